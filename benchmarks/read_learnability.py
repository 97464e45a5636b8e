"""Which captioning objective teaches the small cpu model to read an image? Trains the model
(fresh, or from a checkpoint) on captioning rows alone, 16 per step, Adam at 1e-3, with one of
the masking modes below, and every 100 steps measures held-out color reading: captions with
only their color words masked (as `mmu_reading_probe.py`), argmax at those words.

    python benchmarks/read_learnability.py --workdir runs/demo/pretrain --mode salient_all \
        --steps 400 [--from_checkpoint]

`--workdir` supplies the config, the tokenizers and (with --from_checkpoint) the weights.
Modes ('answer' = every token after the prompt, eos pads included; p ~ U(0.001, 1) per row):
  colors          targets the color words, all masked; mean CE over them
  salient_all     targets the color, shape and size words, all masked (`text_answer_full` on
                  salient rows: the demo's 'read' task)
  salient_random  the same targets, each masked with p, CE / p over a row's targets
                  (`text_answer` on salient rows)
  salient_random_unweighted  the same without the 1 / p
  answer          the whole answer masked with p (mean CE over the masked: `text_answer`'s
                  masking without its weight)
  answer_no_pads  the same without the eos pads
  answer_low      the whole answer, p ~ U(0.001, 0.3)
Prints one line per evaluation: step, held-out color accuracy, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# mode -> (target words: 'colors' | 'salient' | 'answer', p range (None: all masked),
#          1 / p weight, eos pads among the targets)
MODES = {
    "colors": ("colors", None, False, False),
    "salient_all": ("salient", None, False, False),
    "salient_random": ("salient", (0.001, 1.0), True, False),
    "salient_random_unweighted": ("salient", (0.001, 1.0), False, False),
    "answer": ("answer", (0.001, 1.0), False, True),
    "answer_no_pads": ("answer", (0.001, 1.0), False, False),
    "answer_low": ("answer", (0.001, 0.3), False, True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--from_checkpoint", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="init and row-drawing seed")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam's (constant) learning rate")
    a = ap.parse_args()
    import jax
    import jax.numpy as jnp
    import ml_collections
    import numpy as np
    import optax
    from mmada_jax.data.shapesworld import language, scenes as sc
    from mmada_jax.evaluate import load_for_eval
    from mmada_jax.rl import rollout as ro
    from mmada_jax.sampling import prompts as prompts_lib

    with open(os.path.join(a.workdir, "config.json")) as f:
        cfg = ml_collections.ConfigDict(json.load(f))
    ev = load_for_eval(cfg, a.workdir)
    lay, tok, seq_len = ev.layout, ev.text_tok, int(cfg.seq_len)
    words = {"colors": set(sc.COLOR_NAMES), "salient": set(sc.ATTRIBUTE_WORDS)}
    target_words, p_range, weighted, pads = MODES[a.mode]

    def rows(rng, n, kind):
        """tokens [n, L], word mask [n, L] (tokens of `kind` words), answer mask [n, L]."""
        scenes = [sc.random_scene(rng, "train", max_objects=sc.max_objects_of(cfg.data))
                  for _ in range(n)]
        codes = ro.scene_codes([s.to_json() for s in scenes], ev.image_tok,
                               int(cfg.data.image_size))
        tokens = np.full((n, seq_len), lay.eos, np.int32)
        word, answer = np.zeros((n, seq_len), bool), np.zeros((n, seq_len), bool)
        for i, (c, s) in enumerate(zip(codes, scenes)):
            prompt = prompts_lib.mmu_ids(c, "Describe the image.", lay, tok.encode, think=False)
            cap = list(tok.encode(language.caption(s, rng, language.caption_style(cfg.data))))
            row = prompt + cap + [lay.eot_id, lay.eos]
            tokens[i, :len(row)] = row
            word[i, len(prompt):len(prompt) + len(cap)] = [
                tok.decode([t]).strip().lower() in words.get(kind, ()) for t in cap]
            answer[i, len(prompt):] = True
        return tokens, word, answer

    params = ev.params
    if not a.from_checkpoint:
        params = ev.model.init(jax.random.PRNGKey(a.seed), jnp.zeros((1, seq_len), jnp.int32))
        params = jax.tree_util.tree_map(lambda x: getattr(x, "value", x), params["params"],
                                        is_leaf=lambda x: hasattr(x, "value"))
    opt = optax.adam(a.lr)
    state = opt.init(params)

    def logits_of(p, inputs):
        return ev.model.apply({"params": p}, inputs).astype(jnp.float32)

    def loss(p, tokens, target, masked, prob):
        ce = optax.softmax_cross_entropy_with_integer_labels(
            logits_of(p, jnp.where(masked, lay.mask, tokens)), tokens)
        if target_words == "answer":  # mean CE over the masked tokens
            return jnp.where(masked, ce, 0.0).sum() / jnp.maximum(masked.sum(), 1)
        w = jnp.where(masked, ce / (prob[:, None] if weighted else 1.0), 0.0)
        return (w.sum(1) / jnp.maximum(target.sum(1), 1)).mean()

    @jax.jit
    def step(p, s, tokens, target, masked, prob):
        g = jax.grad(loss)(p, tokens, target, masked, prob)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    @jax.jit
    def color_hits(p, tokens, colors):
        return logits_of(p, jnp.where(colors, lay.mask, tokens)).argmax(-1) == tokens

    ev_tokens, ev_colors, _ = rows(np.random.default_rng(99), 128, "colors")
    rng, t0 = np.random.default_rng(1 + a.seed), time.perf_counter()
    for i in range(a.steps + 1):
        if i % 100 == 0:
            hit = np.asarray(color_hits(params, jnp.asarray(ev_tokens), jnp.asarray(ev_colors)))
            print(json.dumps(dict(step=i, color_acc=round(float(hit[ev_colors].mean()), 4),
                                  seconds=round(time.perf_counter() - t0, 1), mode=a.mode)),
                  flush=True)
        if i == a.steps:
            break
        tokens, word, answer = rows(rng, 16, target_words)
        target = answer if target_words == "answer" else word
        if target_words == "answer" and not pads:
            target = target & (tokens != lay.eos)
        prob = (np.ones(len(tokens)) if p_range is None else rng.uniform(*p_range, len(tokens)))
        masked = target & (rng.random(tokens.shape) < prob[:, None])
        params, state = step(params, state, *(jnp.asarray(x) for x in (
            tokens, target, masked, prob.astype(np.float32))))


if __name__ == "__main__":
    main()
