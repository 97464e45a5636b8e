"""Evaluate a run on the ShapesWorld test split: reasoning, VQA, POPE, GenEval-style t2i,
WISE-style knowledge t2i (direct and reason-then-draw); a JSON report, a PNG grid of t2i samples
and sample CoT answers.

    python -m mmada_jax.evaluate --config experiments/sw_sft.py --workdir runs/sw_sft
    python -m mmada_jax.evaluate --config experiments/sw_sft.py --workdir runs/sw_sft \
        --set n_vqa=200 --set text_sampler.steps=64 --out runs/sw_sft/eval_big

Parameters come from the newest checkpoint in `--workdir` (or `--params_from`). Writes
`OUT/report.json` (scores), `OUT/t2i_samples.png`, `OUT/wise_samples.png`, `OUT/samples.json`
(a few answers per set), `OUT/answers.jsonl` (every text answer with its question, reference
and whether it was scored right); OUT defaults to WORKDIR/eval. Set sizes and sampler settings
are `config.eval` fields (defaults: `eval_config()`), overridden by `--set key=value`.
"""

from __future__ import annotations

import json
import logging
import os
import time

import jax
import ml_collections
import numpy as np


def eval_config() -> ml_collections.ConfigDict:
    """Defaults of `config.eval`."""
    return ml_collections.ConfigDict(dict(
        split="test", seed=0, batch_size=16, prompt_len=96,
        n_reasoning=32, n_vqa=48, n_pope=32, n_t2i_per_tag=4, n_wise=16, r2i=True,
        r2i_max_prompt_len=24, r2i_reasoning_steps=16,
        text_sampler=dict(gen_length=64, steps=32, block_length=32, temperature=0.0,
                          remasking="low_confidence", stop_at_eos=False),
        image_sampler=dict(steps=8, guidance_scale=1.0, temperature=1.0, token_temperature=1.0),
        num_shown=4,
        # 'first_sentence': answers about an image are re-decoded after their first worked
        # sentence with the image hidden (`sampling.readback`), in readback_gen_length tokens
        readback="none", readback_gen_length=32,
    ))


def _batches(xs, n):
    for lo in range(0, len(xs), n):
        yield lo, xs[lo:lo + n]


def _pad_to(xs: list, n: int) -> list:
    return xs + [xs[-1]] * (n - len(xs)) if len(xs) < n else xs


class Evaluator:
    """Generates and scores every ShapesWorld eval set with one model's parameters."""

    def __init__(self, config, setup, params, text_tok, image_tok, ecfg=None):
        from mmada_jax.sampling.image import ImageSamplerConfig
        from mmada_jax.sampling.text import TextSamplerConfig
        self.config, self.setup, self.params = config, setup, params
        # where `params` came from, for the report (set by whoever restored them)
        self.source_step: int | None = None
        self.weights: str | None = None  # 'ema' (moving average) or 'params' (last step's)
        self.model, self.layout = setup.model, setup.layout
        self.text_tok, self.image_tok = text_tok, image_tok
        self.e = ecfg if ecfg is not None else eval_config()
        self.tcfg = TextSamplerConfig(**dict(self.e.text_sampler))
        self.icfg = ImageSamplerConfig(**dict(self.e.image_sampler))
        self.key = jax.random.key(int(self.e.seed) + 101)
        from mmada_jax.sampling import readback
        self.readback = readback.check_mode(str(self.e.get("readback", "none")))
        self.tcfg2 = (readback.pass2_config(self.tcfg, int(self.e.get("readback_gen_length", 32)))
                      if self.readback != "none" else None)
        self.last_readback = None  # (answers re-decoded, answers) of the last answer() call
        data = getattr(config, "data", None)
        trained = float(data.get("readback_prob", 0.0) or 0.0) if hasattr(data, "get") else None
        if self.readback != "none" and trained == 0.0:
            logging.warning("config.eval.readback=%r on a model trained without readback rows "
                            "(config.data.readback_prob=0): its masked-image input is one the "
                            "model never saw (the CPU demo's SFT model: VQA 0.263 -> 0.047)",
                            self.readback)

    # ------------------------------------------------------------------ generation
    def answer(self, items, with_image: bool) -> list[str]:
        from mmada_jax.rl import rollout as ro
        d, bs, out = self.config.data, int(self.e.batch_size), []
        mode, redone = self.readback, 0
        for lo, part in _batches(items, bs):
            full = _pad_to(list(part), bs)
            if with_image:
                codes = ro.scene_codes([it["scene"] for it in full], self.image_tok,
                                       int(d.image_size))
                ids = [ro.mmu_prompt(c, it["question"], self.layout, self.text_tok)
                       for c, it in zip(codes, full)]
            else:
                ids = [ro.chat_prompt(it["question"], self.layout, self.text_tok) for it in full]
            key = jax.random.fold_in(self.key, lo)
            s = ro.sample_text(self.model, self.params, ids, self.layout, self.text_tok,
                               self.tcfg, key, prompt_len=int(self.e.prompt_len))
            texts = s.completions[:len(part)]
            if with_image and mode == "first_sentence":
                texts, n = self._read_back(ids[:len(part)], s.tokens[:len(part)], texts,
                                           jax.random.fold_in(key, 1))
                redone += n
            out += texts
        self.last_readback = (redone, len(items)) if with_image and mode != "none" else None
        return out

    def _read_back(self, prompts, tokens, texts, key) -> tuple[list[str], int]:
        """Pass 2 of readback decoding (`sampling.readback`) for a batch's real pass-1 samples
        (prompt ids, sampled tokens [N, P + G], texts). Returns (texts, how many re-decoded)."""
        from mmada_jax.rl import rollout as ro
        from mmada_jax.sampling import prompts as prompts_lib, readback
        p = int(self.e.prompt_len)
        answers = prompts_lib.completion_ids(tokens, p, self.layout)
        plan = readback.plan(prompts, answers, texts, self.layout, self.text_tok.encode)
        if not plan.rows:
            return texts, 0
        rows2 = _pad_to(plan.prompts, int(self.e.batch_size))  # one compiled shape per config
        p2 = p + self.tcfg.gen_length  # room for any kept prefix; pads are key-masked
        s2 = ro.sample_text(self.model, self.params, rows2, self.layout, self.text_tok,
                            self.tcfg2, key, prompt_len=p2)
        ids2 = prompts_lib.completion_ids(s2.tokens, p2, self.layout)[:len(plan.rows)]
        return (readback.merge(texts, plan, ids2,
                               lambda i: ro.decode_text(self.text_tok, i, self.layout)),
                len(plan.rows))

    def draw(self, prompts) -> list[np.ndarray]:
        from mmada_jax.rl import rollout as ro
        d, bs, out = self.config.data, int(self.e.batch_size), []
        for lo, part in _batches(prompts, bs):
            s = ro.sample_images(self.model, self.params, _pad_to(list(part), bs), self.layout,
                                 self.text_tok, self.image_tok, self.icfg,
                                 jax.random.fold_in(self.key, 1000 + lo),
                                 max_text_len=int(d.max_text_len),
                                 num_image_tokens=int(d.num_image_tokens))
            out += s.completions[:len(part)]
        return out

    def reason_and_draw(self, prompts):
        from mmada_jax.rl import rollout as ro
        d, bs, imgs, texts = self.config.data, int(self.e.batch_size), [], []
        v, mp = int(d.num_image_tokens), int(self.e.r2i_max_prompt_len)
        rlen = int(self.config.seq_len) - mp - 1 - v - 2
        for lo, part in _batches(prompts, bs):
            s, t = ro.sample_r2i(self.model, self.params, _pad_to(list(part), bs), self.layout,
                                 self.text_tok, self.image_tok, self.icfg,
                                 jax.random.fold_in(self.key, 2000 + lo), max_prompt_len=mp,
                                 reasoning_len=rlen, num_image_tokens=v,
                                 reasoning_steps=int(self.e.r2i_reasoning_steps))
            imgs += s.completions[:len(part)]
            texts += t[:len(part)]
        return imgs, texts

    # ------------------------------------------------------------------ all sets
    def run(self, out_dir: str | None = None, tag: str = "") -> dict:
        from mmada_jax.evals import shapesworld_eval as swe
        from mmada_jax.data.shapesworld.language import caption_style
        from mmada_jax.data.shapesworld.scenes import max_objects_of
        e, split, seed = self.e, str(self.e.split), int(self.e.seed)
        m = max_objects_of(self.config.get("data"))  # scenes as complex as the training data's
        results, samples, times, every = {}, {}, {}, {}
        k = int(e.num_shown)

        def keep(task, items, resp, correct, **flags):  # every answer, and the first k shown
            every[task] = [dict(kind=it.get("kind", task), question=it["question"],
                                answer=it["answer"], response=r, correct=bool(c),
                                **{name: bool(v[i]) for name, v in flags.items()})
                           for i, (it, r, c) in enumerate(zip(items, resp, correct))]
            samples[task] = [dict(question=x["question"], answer=x["answer"],
                                  response=x["response"]) for x in every[task][:k]]

        def timed(name, fn):
            t0 = time.perf_counter()
            r = fn()
            times[name] = round(time.perf_counter() - t0, 1)
            return r

        if int(e.n_reasoning):
            from mmada_jax.data.shapesworld.reasoning import difficulty
            items = swe.reasoning_items(int(e.n_reasoning), split, seed,
                                        **difficulty(self.config.get("data")))
            resp = timed("reasoning", lambda: self.answer(items, False))
            results["reasoning"] = swe.score_reasoning(resp, items)
            keep("reasoning", items, resp, results["reasoning"]["correct"],
                 sound=results["reasoning"]["sound"])
        if int(e.n_vqa):
            items = swe.vqa_items(int(e.n_vqa), split, seed, max_objects=m)
            resp = timed("vqa", lambda: self.answer(items, True))
            results["vqa"] = swe.score_vqa(resp, items)
            self._note_readback(results["vqa"])
            keep("vqa", items, resp, results["vqa"]["correct"])
        if int(e.n_pope):
            items = swe.pope_items(int(e.n_pope), split, seed, max_objects=m)
            resp = timed("pope", lambda: self.answer(items, True))
            results["pope"] = swe.score_pope(resp, items)
            self._note_readback(results["pope"])
            keep("pope", items, resp, [p == it["label"] for p, it in
                                       zip(results["pope"]["predictions"], items)])
        images = {}
        if int(e.n_t2i_per_tag):
            items = swe.t2i_items(int(e.n_t2i_per_tag), split, seed, max_objects=m,
                                  caption_style=caption_style(self.config.get("data")))
            imgs = timed("t2i", lambda: self.draw([it["prompt"] for it in items]))
            results["t2i"] = swe.score_t2i(imgs, items)
            images["t2i"] = imgs
            samples["t2i"] = [dict(prompt=it["prompt"], tag=it["tag"], correct=c)
                              for it, c in zip(items[:2 * k], results["t2i"]["correct"])]
        if int(e.n_wise):
            items = swe.wise_items(int(e.n_wise), split, seed, max_objects=m)
            imgs = timed("wise", lambda: self.draw([it["prompt"] for it in items]))
            results["wise"] = swe.score_wise(imgs, items)
            images["wise"] = imgs
            if bool(e.r2i):
                rimgs, texts = timed("wise_r2i",
                                     lambda: self.reason_and_draw([it["prompt"] for it in items]))
                results["wise_r2i"] = swe.score_wise(rimgs, items)
                images["wise_r2i"] = rimgs
                samples["wise_r2i"] = [dict(prompt=it["prompt"], reference=it["cot"],
                                            reasoning=t) for it, t in zip(items[:k], texts[:k])]
        results["time_s"] = times
        if out_dir:
            self.write(out_dir, results, samples, images, tag)
            with open(os.path.join(out_dir, "answers.jsonl"), "w") as f:  # every text answer
                for task, rows in every.items():
                    for row in rows:
                        f.write(json.dumps(dict(task=task, **row)) + "\n")
        return dict(results=results, samples=samples, images=images)

    def _note_readback(self, result: dict) -> None:
        if self.last_readback is not None:
            result["readback_redecoded"], result["readback_of"] = self.last_readback

    def write(self, out_dir, results, samples, images, tag=""):
        from mmada_jax.evals.report import write_report
        from mmada_jax.pipeline_report import save_image_grid
        os.makedirs(out_dir, exist_ok=True)
        # which checkpoint and weights were scored, when the caller says (load_for_eval and
        # the demo do): the last step's parameters or their moving average
        source = {k: v for k, v in (("step", self.source_step), ("weights", self.weights))
                  if v is not None}
        write_report(os.path.join(out_dir, "report.json"), results, drop_per_sample=True,
                     config=json.loads(self.config.to_json_best_effort()), tag=tag,
                     image_tokenizer=getattr(self.image_tok, "name", ""), **source)
        with open(os.path.join(out_dir, "samples.json"), "w") as f:
            json.dump(samples, f, indent=2)
        for name, imgs in images.items():
            if imgs:
                save_image_grid(imgs, os.path.join(out_dir, f"{name}_samples.png"), ncol=6)


def apply_sets(e, sets) -> ml_collections.ConfigDict:
    """`key=value` overrides (dotted keys, Python literals) of an eval config."""
    import ast
    e = ml_collections.ConfigDict(e.to_dict())
    for item in sets or ():
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        node, parts = e, key.split(".")
        for p in parts[:-1]:
            if p not in node:
                raise KeyError(f"--set {key}: unknown eval key {p!r}; known {sorted(node.keys())}")
            node = node[p]
        if parts[-1] not in node:
            raise KeyError(f"--set {key}: unknown eval key; known {sorted(node.keys())}")
        node[parts[-1]] = value
    return e


def load_for_eval(config, workdir: str, devices=None, text_tok=None, image_tok=None,
                  sets=(), weights: str = "auto"):
    """(Evaluator) for `config` with the newest parameters under `workdir`; `sets` are
    `key=value` overrides of the eval settings (config.eval, else `eval_config()`); `weights`
    picks the parameters' moving average or the last step's (`restore_params`)."""
    from mmada_jax import assets
    from mmada_jax.rl.trainer import split_config
    from mmada_jax.training.checkpoint import restore_weights
    from mmada_jax.training.loop import build
    base, extras = split_config(config)
    if "rl" in extras:  # a GRPO config: its optimizer schedule spans steps * mu updates
        base.train.steps = int(extras["rl"].get("steps", 1)) * int(
            extras["rl"].get("num_iterations", 1))
    e = eval_config()
    if "eval" in extras:
        e.update(extras["eval"])
    e = apply_sets(e, sets)
    setup = build(base, devices or jax.devices()[:1])
    params, step, which = restore_weights(workdir, setup.abstract_state, weights=weights)
    text_tok = text_tok or assets.text_tokenizer(base, setup.layout)
    image_tok = image_tok or assets.image_tokenizer(base, setup.layout)
    ev = Evaluator(base, setup, params, text_tok, image_tok, e)
    ev.source_step, ev.weights = step, which
    return ev


def evaluate(config, workdir: str, out_dir: str | None = None, devices=None, tag: str = "",
             text_tok=None, image_tok=None, sets=(), weights: str = "auto") -> dict:
    ev = load_for_eval(config, workdir, devices, text_tok, image_tok, sets, weights)
    out_dir = out_dir or os.path.join(workdir, "eval")
    t0 = time.perf_counter()
    out = ev.run(out_dir, tag or os.path.basename(os.path.normpath(workdir)))
    what = " (moving average)" if ev.weights == "ema" else ""
    print(f"[eval] {workdir} step {ev.source_step}{what}: {summary_line(out['results'])} "
          f"({time.perf_counter() - t0:.0f}s) -> {out_dir}/report.json", flush=True)
    return out


def summary_line(r: dict) -> str:
    parts = []
    for name, path in (("reason", ("reasoning", "accuracy")), ("vqa", ("vqa", "accuracy")),
                       ("pope_f1", ("pope", "f1")), ("geneval", ("t2i", "overall")),
                       ("wise", ("wise", "accuracy")), ("wise_r2i", ("wise_r2i", "accuracy"))):
        x = r
        for p in path:
            x = x.get(p) if isinstance(x, dict) else None
        if isinstance(x, (int, float)):
            parts.append(f"{name} {x:.3f}")
    return " | ".join(parts)


def main(argv):
    del argv
    from absl import flags
    from absl import logging
    if flags.FLAGS["verbosity"].present == 0:  # progress lines only (as mmada_jax.train)
        logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    if f.config is None or f.workdir is None:
        raise ValueError("--config and --workdir are required")
    evaluate(f.config, f.params_from or f.workdir, f.out or os.path.join(f.workdir, "eval"),
             sets=f.set, weights=f.weights)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags
    config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Run directory (checkpoints inside).")
    flags.DEFINE_string("params_from", None, "Take parameters from this run instead.")
    flags.DEFINE_string("out", None, "Output directory (default WORKDIR/eval).")
    from mmada_jax.training.checkpoint import WEIGHTS
    flags.DEFINE_enum("weights", "auto", WEIGHTS,
                      "The parameters' moving average ('ema', kept when train.ema_decay > 0), "
                      "the last step's ('params'), or the average when there is one ('auto').")
    flags.DEFINE_multi_string("set", [], "Eval override key=value (e.g. --set n_vqa=100 "
                              "--set text_sampler.steps=64).")
    app.run(main)
