"""Does a ShapesWorld model bind captions to image cells? One forward pass per caption with every
image token masked (the sampler's first step), argmax codes scored against the true scene's codes
(object cells vs background) and read back by the scene parser (object F1), on train-split and
test-split scenes (test scenes hold a (color, shape) pair never drawn in training).

    python benchmarks/t2i_binding_probe.py --workdir runs/demo/pretrain --n 128

Prints one JSON line per split.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def probe(ev, split: str, n: int, seed: int = 0) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from mmada_jax.data.shapesworld import language, parser, scenes as sc
    from mmada_jax.rl import rollout as ro
    from mmada_jax.sampling import prompts as prompts_lib
    d = ev.config.data
    m = sc.max_objects_of(d)
    rng = np.random.default_rng([seed, 7 if split == "train" else 9])
    scenes = [sc.random_scene(rng, split, max_objects=m) for _ in range(n)]
    style = language.caption_style(d)
    caps = [language.caption(s, rng, style) for s in scenes]
    size, v = int(d.image_size), int(d.num_image_tokens)
    codes = ro.scene_codes([s.to_json() for s in scenes], ev.image_tok, size)
    p = prompts_lib.t2i_prompts(caps, ev.layout, ev.text_tok.encode, int(d.max_text_len), v)
    s0 = p["image_start"]
    fn = jax.jit(lambda prm, t, k: ev.model.apply({"params": prm}, t, key_mask=k))
    logits = np.asarray(fn(ev.params, jnp.asarray(p["tokens"]), jnp.asarray(p["key_mask"])))
    img = logits[:, s0:s0 + v, ev.layout.image_offset:ev.layout.image_offset + ev.layout.codebook_size]
    pred = img.argmax(-1)
    g = int(round(v ** 0.5))
    obj_cells = np.zeros((n, v), bool)
    per = g // sc.GRID
    for i, s in enumerate(scenes):
        for o in s.objects:
            grid = np.zeros((g, g), bool)
            grid[o.row * per:(o.row + 1) * per, o.col * per:(o.col + 1) * per] = True
            obj_cells[i] |= grid.ravel()
    hit = pred == codes
    decoded = ev.image_tok.decode(pred.reshape(n, g, g))
    scores = [parser.score(parser.parse_scene(np.asarray(im)), s)
              for im, s in zip(decoded, scenes)]
    out = dict(split=split, n=n, code_acc_objects=round(float(hit[obj_cells].mean()), 4),
               code_acc_background=round(float(hit[~obj_cells].mean()), 4))
    for k in ("object_f1", "exact", "position", "color", "shape", "count"):
        out[k] = round(float(np.mean([sc_[k] for sc_ in scores])), 4)
    return out


if __name__ == "__main__":
    from probe_cli import main
    main(probe)
