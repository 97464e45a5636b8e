"""Does a ShapesWorld model read objects off the image? Captioning rows (image + "Describe the
image." + the scene's caption, as pre-training trains them) with only the caption's color words
(or only its shape words) masked: one forward pass, argmax at those positions against the true
words, on train-split and test-split scenes. The rest of the caption stays visible, so the
masked word can only come from the image (the position words next to it say which cell).

    python benchmarks/mmu_reading_probe.py --workdir runs/demo/pretrain --n 128

Prints one JSON line per split: color and shape word accuracy (chance about 1/8 and 1/3), and
the control: the same rows with each caption paired with another scene's image (`*_acc_other`)
and the share of masked words predicted the same with either image (`*_same`; 1.0 means the
prediction does not depend on the image at all).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def probe(ev, split: str, n: int, seed: int = 0) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from mmada_jax.data.shapesworld import language, scenes as sc
    from mmada_jax.rl import rollout as ro
    from mmada_jax.sampling import prompts as prompts_lib
    d, lay, tok = ev.config.data, ev.layout, ev.text_tok
    rng = np.random.default_rng([seed, 5 if split == "train" else 13])
    scenes = [sc.random_scene(rng, split, max_objects=sc.max_objects_of(d)) for _ in range(n)]
    style = language.caption_style(d)
    codes = ro.scene_codes([s.to_json() for s in scenes], ev.image_tok, int(d.image_size))
    words = {"color": set(sc.COLOR_NAMES), "shape": set(sc.SHAPES)}

    def batch(image_codes):
        rows, kinds = [], []
        for c, cap in zip(image_codes, captions):
            prompt = prompts_lib.mmu_ids(c, "Describe the image.", lay, tok.encode, think=False)
            kind = [next((k for k, ws in words.items()
                          if tok.decode([t]).strip().lower() in ws), "") for t in cap]
            rows.append(prompt + cap + [lay.eot_id, lay.eos])
            kinds.append([""] * len(prompt) + kind + ["", ""])
        tokens = np.full((n, max(map(len, rows))), lay.eos, np.int32)
        for i, r in enumerate(rows):
            tokens[i, :len(r)] = r
        return tokens, kinds

    captions = [list(tok.encode(language.caption(s, rng, style))) for s in scenes]
    fn = jax.jit(lambda p, t: ev.model.apply({"params": p}, t))
    out = {"split": split, "n": n}
    # the control pairs each caption with the next scene's image (same lengths: one image size)
    (tokens, kinds), (other, _) = batch(codes), batch(np.roll(np.asarray(codes), -1, axis=0))
    for k in words:
        m = np.zeros(tokens.shape, bool)
        for i, ks in enumerate(kinds):
            m[i, :len(ks)] = [x == k for x in ks]
        pred, pred_other = (np.asarray(fn(ev.params, jnp.asarray(np.where(m, lay.mask, t))))
                            .argmax(-1) for t in (tokens, other))
        out[f"{k}_acc"] = round(float((pred == tokens)[m].mean()), 4)
        out[f"{k}_acc_other"] = round(float((pred_other == tokens)[m].mean()), 4)
        out[f"{k}_same"] = round(float((pred == pred_other)[m].mean()), 4)
        out[f"{k}_words"] = int(m.sum())
    return out


if __name__ == "__main__":
    from probe_cli import main
    main(probe)
