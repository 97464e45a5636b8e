"""The main job, end to end on ShapesWorld: `make demo` (= python -m mmada_jax.demo --workdir
runs/demo) on a 2-core CPU in about 20 minutes.

  1. data        build the ShapesWorld TFDS dataset (array_record) under WORKDIR/assets/data
  2. tokenizers  SentencePiece on the ShapesWorld corpus; MAGVIT-v2 (cpu 24 px -> 6x6 codes, gpu
                 64 px -> 8x8); every train
                 image encoded once into a code cache
  3. pretrain    masked-diffusion pre-training: t2i + text corpus + VQA      -> eval
  4. sft         mixed long-CoT in one <think> format (+ reason-then-draw)    -> eval
  5. grpo        UniGRPO on reasoning, VQA and t2i rewards                     -> eval
  6. report      WORKDIR/report.md: metrics per stage, t2i sample grids, CoT samples, reward curve

    python -m mmada_jax.demo --workdir runs/demo [--config experiments/sw_gpu.py]
        [--config.budget.pretrain=600] [--stages pretrain,sft]

Each training stage gets a time budget (`config.budget.<stage>` seconds, compile included): it
runs a few steps, measures its speed and sets its step count to fill the budget (capped by the
stage config's `train.steps`), re-times itself over the first `resize_at` of that run and
re-sizes, and stops at the budget's deadline if it still runs slow. Stages already finished in
WORKDIR are skipped on a rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import ml_collections
import numpy as np


def _experiments_dir() -> str:
    """The repo's experiments/ (beside the package in a source checkout; else ./experiments)."""
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")
    return here if os.path.isdir(here) else os.path.abspath("experiments")


EXPERIMENTS = _experiments_dir()
STAGES = ("pretrain", "sft", "grpo")


def demo_config(variant: str = "cpu") -> ml_collections.ConfigDict:
    """Budgets and sizes of the demo; `variant` picks the stage configs (sw_common.py)."""
    cpu = variant != "gpu"
    c = ml_collections.ConfigDict()
    c.variant = variant
    c.stages = ",".join(STAGES)
    # seconds per phase (compile included); the total is about 20 minutes on 2 CPU cores, with
    # the evals after each stage (~40-50 s each) and the UniGRPO stage's held-out reward eval
    # (90-140 s on cpu, `rl.heldout_chunks`) after it. v39 (pretrain 290, SFT 520, 256 held-out
    # prompts, 96 problems per eval) took 21.4 min; since v40 the fine-tuning stage gives 60 s
    # and pre-training 15 s to the larger reasoning eval and the demo's time, and since v49
    # another 20 and 10 s to the held-out eval's 36-row chunks (6 reasoning prompts a step:
    # 125-138 s in v47 / v48, where v43-v46's 24-row chunks took 88-118 s)
    c.budget = ml_collections.ConfigDict(dict(
        image_tokenizer=150.0 if cpu else 1800.0, pretrain=265.0 if cpu else 3 * 3600.0,
        sft=440.0 if cpu else 3600.0, grpo=180.0 if cpu else 3600.0))
    c.text_tokenizer = ml_collections.ConfigDict(dict(base_vocab_size=1024, corpus=3000))
    c.image_tokenizer = ml_collections.ConfigDict(dict(
        kind="magvit",  # 'magvit' (trained here) or 'pool' (pooled-color stand-in, no training)
        # cpu: 24 px -> 6x6 codes (two levels, the config's default; ~20 steps/s on 2 cores, so
        # the budget ends it about the cap); gpu: 64 px -> 8x8
        steps=3000 if cpu else 5000, batch_size=16, variant="" if cpu else "8x8"))
    # step caps per stage (0: the stage config's train.steps / rl.steps); budgets still apply
    c.steps = ml_collections.ConfigDict(dict(pretrain=0, sft=0, grpo=0))
    # per-stage config overrides, 'key=value;key=value' (e.g. 'optim.lr=3e-3;train.seed=4')
    c.stage_overrides = ml_collections.ConfigDict(dict(pretrain="", sft="", grpo=""))
    # steps timed before a stage sizes itself (in four logged intervals: steady_rate)
    c.calibrate_steps = 40 if cpu else 200
    # share of the sized run after which a stage times itself again and re-sizes (0: size once)
    c.resize_at = 0.3
    c.code_cache = True  # encode the train images once instead of in every batch
    from mmada_jax.evaluate import eval_config
    e = eval_config()
    if cpu:
        # t2i and WISE prompts are nearly free (16 per tag and 48 cost ~4 s per stage over 4 and
        # 12, 2026-12-05): with 4 per tag object F1 moved by 0.1 between runs of one config.
        # 192 reasoning problems (96 before v40, ~7 s more per stage): UniGRPO's greedy gain from
        # v39's SFT model was +0.02-0.03 in 2 of 3 rollout seeds on 384 problems, about one
        # problem in 96 against a spread of three (BENCHMARKS.md, "The demo")
        e.update(dict(batch_size=24, n_reasoning=192, n_vqa=96, n_pope=48, n_t2i_per_tag=16,
                      n_wise=48, num_shown=3))
        # one token per step in blocks of 8: a small, briefly trained model decodes far better;
        # answers about 1-2 object scenes and 1-step problems fit 48 tokens
        e.text_sampler.update(dict(gen_length=48, steps=48, block_length=8))
    else:
        e.update(dict(batch_size=64, n_reasoning=256, n_vqa=384, n_pope=256, n_t2i_per_tag=32,
                      n_wise=64))
        # one token per step in blocks of 8, as on cpu; on the GPU it scores the same as 2 per
        # step in blocks of 32 (run 4's checkpoints: VQA 0.896 both, reasoning 0.980 / 0.977)
        e.text_sampler.update(dict(steps=64, block_length=8))
    # a batch stops after the first block that ends in eos in every row: the same answers (they
    # are decoded up to their first eos), fewer model calls
    e.text_sampler.stop_at_eos = True
    c.eval = e
    return c


def add_stage_override(dc, setting: str, stages=STAGES) -> ml_collections.ConfigDict:
    """Append 'key=value' to `dc.stage_overrides` of each stage in `stages` (after what is
    there): how an experiment file changes one setting of the demo's runs. Returns `dc`."""
    for stage in stages:
        dc.stage_overrides[stage] = ";".join(s for s in (dc.stage_overrides[stage], setting) if s)
    return dc


def _stage_config(stage: str, variant: str, workdir: str, dc=None):
    from mmada_jax.config import load_config_file
    cfg = load_config_file(os.path.join(EXPERIMENTS, f"sw_{stage}.py"), variant)
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    if dc is not None:
        cfg.tokens.base_vocab_size = int(dc.text_tokenizer.base_vocab_size)
        from mmada_jax.config import apply_overrides, parse_overrides
        over = parse_overrides(dc.get("stage_overrides", {}).get(stage, ""),
                               f"demo config.stage_overrides.{stage}")
        if over:
            cfg = apply_overrides(cfg, over)
            cfg.unlock()
        cap = int(dc.get("steps", {}).get(stage, 0))
        if cap > 0:
            if stage == "grpo":
                cfg.rl.steps = cap
            else:
                cfg.train.steps = cap
    assets = os.path.join(workdir, "assets")
    cfg.data.tokenizer = os.path.join(assets, "text.model")
    cfg.data.image_tokenizer = os.path.join(assets, "image_tokenizer")
    cfg.data.data_dir = os.path.join(assets, "data")
    return cfg


class Timer:
    def __init__(self):
        self.times = {}

    def __call__(self, name):
        timer = self

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()
                print(f"\n=== {name} ===", flush=True)

            def __exit__(self, *exc):
                timer.times[name] = round(time.perf_counter() - self.t0, 1)
                print(f"=== {name}: {timer.times[name]:.0f}s ===", flush=True)
        return _T()


# ---------------------------------------------------------------------------- phases
def build_data(cfg):
    from mmada_jax.data.shapesworld import builder, scenes
    d = cfg.data
    sw = d.shapesworld
    b = builder.make_builder(os.path.expanduser(d.data_dir), image_size=int(d.image_size),
                             num_train=int(sw.num_train), num_test=int(sw.num_test),
                             seed=int(sw.get("seed", 0)),
                             knowledge_fraction=float(sw.knowledge_fraction),
                             max_objects=scenes.max_objects_of(d))
    builder.ensure_built(b, build=True)
    print(f"ShapesWorld: {sw.num_train} train / {sw.num_test} test images at {d.image_size}px "
          f"in {d.data_dir}", flush=True)


def train_text_tokenizer(dc, path: str):
    from mmada_jax.assets import train_shapesworld_sentencepiece
    if not os.path.exists(path):
        train_shapesworld_sentencepiece(path, int(dc.text_tokenizer.base_vocab_size),
                                        int(dc.text_tokenizer.corpus))
    print(f"text tokenizer: {path}", flush=True)


def train_image_tokenizer(dc, cfg, path: str) -> dict:
    """MAGVIT-v2 via the tokenizer trainer, saved where `assets.image_tokenizer` reads it."""
    from mmada_jax.assets import save_magvit
    it = dc.image_tokenizer
    if it.kind == "pool":
        return {}
    if os.path.exists(os.path.join(path, "magvit_config.json")):
        return _read_json(os.path.join(path, "eval.json"))
    from mmada_jax.config import load_config_file
    from mmada_jax.tokenizers.magvit import MagvitConfig
    from mmada_jax.train_tokenizer import train_tokenizer
    tcfg = load_config_file(os.path.join(EXPERIMENTS, "tokenizer_shapesworld.py"), it.variant)
    tcfg = ml_collections.ConfigDict(tcfg.to_dict())
    tcfg.train.steps = int(it.steps)
    tcfg.batch_size = int(it.batch_size)
    tcfg.train.log_every = max(1, int(it.steps) // 10)
    tcfg.train.ckpt_every = 10 ** 9
    tcfg.train.eval_every = 0
    tcfg.data.image_size = int(cfg.data.image_size)
    from mmada_jax.data.shapesworld.scenes import max_objects_of
    tcfg.data.max_objects = max_objects_of(cfg.data)  # the scenes the model will see
    tcfg.mesh.data = 1
    import jax
    t0, run_dir, k = time.perf_counter(), path + "_run", int(dc.calibrate_steps)
    tcfg.train.log_every = max(1, min(tcfg.train.log_every, k // 4))
    out = train_tokenizer(tcfg, run_dir, stop_after=k, devices=jax.devices()[:1])
    rate = steady_rate(out["history"])
    spent = time.perf_counter() - t0
    steps = int(min(int(it.steps), k + max(0.0, float(dc.budget.image_tokenizer) - spent - 10)
                    * rate * 0.95))
    print(f"[image tokenizer] {rate:.2f} steps/s: training to step {steps} (cap {it.steps}) in "
          f"a {dc.budget.image_tokenizer:.0f}s budget", flush=True)
    tcfg.train.steps = max(steps, k)
    out = train_tokenizer(tcfg, run_dir, devices=jax.devices()[:1])
    mc = MagvitConfig.from_dict(tcfg.magvit.to_dict())
    save_magvit(path, mc, jax.device_get(out["state"].params))
    with open(os.path.join(path, "eval.json"), "w") as f:
        json.dump(out["eval"], f)
    return out["eval"]


def build_code_caches(cfgs: dict, image_tok, assets_dir: str) -> str:
    """Encode every train-split image once (t2i, VQA and caption components read the same records) and
    point each stage's image components at the cache: the tokenizer leaves the training step."""
    import numpy as np
    from mmada_jax.data import codes as codes_lib
    from mmada_jax.data import images as image_lib
    from mmada_jax.data.shapesworld import builder, scenes
    d = cfgs["pretrain"].data
    sw = d.shapesworld
    m = scenes.max_objects_of(d)
    path = os.path.join(assets_dir, f"codes_train_{int(d.image_size)}px"
                        + ("" if m == scenes.MAX_OBJECTS else f"_m{m}"))
    stamp = getattr(image_tok, "source_mtime", 0.0)  # a retrained tokenizer invalidates the cache
    if not os.path.exists(path + ".npy") or os.path.getmtime(path + ".npy") < stamp:
        src = builder.ShapesWorldSource(
            os.path.expanduser(d.data_dir), "train", image_size=int(d.image_size),
            num_train=int(sw.num_train), num_test=int(sw.num_test), seed=int(sw.get("seed", 0)),
            knowledge_fraction=float(sw.knowledge_fraction), max_objects=scenes.max_objects_of(d))

        # the cache is addressed by the record's `index` field (the TFDS files hold the records
        # in shuffled order), so map each index to its position in the source first
        position = np.full((len(src),), -1, np.int64)
        for pos in range(len(src)):
            position[int(src[pos]["index"])] = pos

        def image_at(i):
            try:
                return image_lib.normalize(image_lib.decode(src[int(position[i])]["image"]))
            except image_lib.BadImage:
                return None
        if (position < 0).any():
            raise ValueError(f"ShapesWorld train split in {d.data_dir}: record indices are not "
                             f"0..{len(src) - 1}; rebuild it")
        codes_lib.build_code_cache(image_at, len(src), image_tok.encode, path, batch_size=256,
                                   description=f"{getattr(image_tok, 'name', '')} train split")
    for cfg in cfgs.values():
        comps = {n: dict(c) for n, c in cfg.data.get("components", {}).items()}
        for name, task in (("sw_t2i", "t2i"), ("sw_vqa", "vqa"), ("sw_caption", "caption")):
            comps.setdefault(name, dict(kind="shapesworld", task=task))["codes_cache"] = path
        cfg.data.components = ml_collections.ConfigDict(comps)
    print(f"code cache: {path}.npy", flush=True)
    return path


def _read_json(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _done(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, "DONE"))


def steady_rate(history: list) -> float:
    """Steps/s a stage will keep up: the median over the logged intervals after the first (which
    holds compilation and the input workers' start). One interval alone was noisy on the GPU: a
    fine-tuning stage timed at 22.3 steps/s ran at 28 and stopped 1800 steps short of its cap
    with 84 s of its budget left (run 12, BENCHMARKS.md)."""
    rates = [float(h["steps_per_s"]) for h in history if h.get("steps_per_s")]
    rates = rates[1:] or rates
    return float(np.median(rates)) if rates else 1.0


def plan_steps(done: int, rate: float, time_left: float, resume_s: float, cap: int,
               safety: float = 0.97) -> int:
    """The step a stage can reach: `done` plus what `rate` steps/s fill of `time_left` seconds
    after one more resume (`resume_s`: restore, input workers and compile, paid on each
    `train` call) and a 5 s margin, at `safety` of the rate; at most `cap`, at least `done`."""
    spare = max(0.0, time_left - resume_s - 5.0)
    return int(min(cap, max(done, done + spare * rate * safety)))


def train_stage(stage: str, cfg, workdir: str, budget_s: float, calibrate: int, tokens,
                resize_at: float = 0.3):
    """Foundation train loop, sized to the time budget (see module docstring).

    Three calls of `train`: `calibrate` steps to time the stage; the run sized from that rate
    up to `resize_at` of the remaining steps, after which it is timed again over that longer
    window and re-sized (the 40-step timing was off by -10% in demo v25's SFT, which then left
    74 s of its budget unused, and by +15% in v23's, which overran); then the rest, with the
    budget's deadline as the guard. Re-sizing moves the cosine schedule's end, so its rate at
    the re-size point shifts by a few percent. `resize_at` 0 sizes once."""
    import jax
    from mmada_jax import assets
    from mmada_jax.training.loop import train
    if not 0.0 <= resize_at < 1.0:
        raise ValueError(f"demo config.resize_at must be in [0, 1), got {resize_at}")
    text_tok, image_tok = tokens
    devices = jax.devices()[:1]
    cap = int(cfg.train.steps)
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    k = min(calibrate, cap)
    cfg.train.log_every = max(1, min(int(cfg.train.log_every), k // 4))

    def run(steps, done, stop_after=None):
        """Train from step `done` towards `steps`: (train's output, steps/s, resume overhead s)."""
        cfg.train.steps = steps
        src = assets.batch_source(cfg, None, text_tok, image_tok)
        t = time.perf_counter()
        out = train(cfg, workdir, stop_after=stop_after, batch_source=src, devices=devices,
                    deadline=deadline)
        seconds = time.perf_counter() - t - float(out.get("lead_in_seconds", 0.0))
        rate = steady_rate(out["history"])  # compile excluded
        trained = stop_after if out["stopped_by"] == "stop_after" else int(out["step"]) - done
        return out, rate, max(0.0, seconds - trained / max(rate, 1e-6))

    out, rate, resume_s = run(cap, 0, stop_after=k)
    hist, done = list(out["history"]), int(out["step"])
    steps = plan_steps(done, rate, deadline - time.perf_counter(), resume_s, cap)
    print(f"[{stage}] {rate:.2f} steps/s after {done} steps ({time.perf_counter() - t0:.0f}s "
          f"with compile): training to step {steps} (cap {cap}) in a {budget_s:.0f}s budget",
          flush=True)
    first_plan = steps
    mid = done + int((steps - done) * resize_at)
    if resize_at > 0 and mid - done >= 8 * int(cfg.train.log_every) \
            and out["stopped_by"] == "stop_after":
        since = done
        out, rate, resume_s = run(steps, done, stop_after=mid - done)
        hist, done = hist + out["history"], int(out["step"])
        if out["stopped_by"] == "stop_after":
            steps = plan_steps(done, rate, deadline - time.perf_counter(), resume_s, cap)
            print(f"[{stage}] {rate:.2f} steps/s over steps {since}-{done}: re-sized to step "
                  f"{steps}", flush=True)
    if steps > done and out["stopped_by"] == "stop_after":
        out, _, _ = run(steps, done)
        hist, done = hist + out["history"], int(out["step"])
    if out["stopped_by"] == "deadline":
        print(f"[{stage}] the {budget_s:.0f}s budget ran out at step {done} of {steps}",
              flush=True)
    with open(os.path.join(workdir, "DONE"), "w") as f:
        json.dump(dict(steps=done, planned_steps=max(steps, k), first_plan=first_plan,
                       seconds=time.perf_counter() - t0), f)
    return hist


def run_eval(stage: str, cfg, workdir: str, ecfg, tokens, out_dir: str | None = None,
             weights: str = "auto") -> dict:
    """Evaluate the newest checkpoint in `workdir` into `out_dir` (default WORKDIR/eval); a
    finished report there is reused. `weights`: the parameters' moving average or the last
    step's (`training.checkpoint.restore_params`; 'auto': the average when the stage kept one)."""
    import jax
    from mmada_jax.evaluate import Evaluator, summary_line
    from mmada_jax.rl.trainer import split_config
    from mmada_jax.training.checkpoint import restore_weights
    from mmada_jax.training.loop import build
    out_dir = out_dir or os.path.join(workdir, "eval")
    if os.path.exists(os.path.join(out_dir, "report.json")):
        return _read_json(os.path.join(out_dir, "report.json"))["results"]
    base, extras = split_config(cfg)
    setup = build(base, jax.devices()[:1])
    params, step, which = restore_weights(workdir, setup.abstract_state, weights=weights)
    ev = Evaluator(base, setup, params, tokens[0], tokens[1], ecfg)
    ev.source_step, ev.weights = step, which
    res = ev.run(out_dir, stage)["results"]
    what = " (moving average)" if which == "ema" else ""
    print(f"[eval {stage}] step {step}{what}: {summary_line(res)}", flush=True)
    return res


def enable_compilation_cache(path: str) -> None:
    """Persistent XLA cache: a resumed stage and later stages' evals reuse compiled programs."""
    import jax
    try:
        jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)
    except Exception as e:  # pylint: disable=broad-except
        print(f"(no persistent compilation cache: {e})", flush=True)


def config_fingerprint(dc, cfgs: dict) -> dict:
    """What the phases a rerun would skip were built from: tokenizer settings and every stage's
    model, tokens, data and sequence length (JSON-normalized)."""
    fp = {"variant": dc.variant, "image_tokenizer": dc.image_tokenizer.to_dict(),
          "text_tokenizer": dc.text_tokenizer.to_dict()}
    for s, c in cfgs.items():
        for k in ("model", "tokens", "data", "seq_len"):
            v = c[k]
            fp[f"{s}.{k}"] = v.to_dict() if hasattr(v, "to_dict") else v
        for path_key in ("tokenizer", "image_tokenizer", "data_dir"):  # under WORKDIR: a copied
            fp[f"{s}.data"].pop(path_key, None)                        # run stays the same run
    return json.loads(json.dumps(fp, sort_keys=True, default=str))


def check_workdir_config(workdir: str, fingerprint: dict) -> None:
    """A rerun skips finished phases, so it must be the same configuration: record it on the first
    run; on a later one, name what changed and stop (use --fresh or another --workdir)."""
    path = os.path.join(workdir, "demo_fingerprint.json")
    if os.path.exists(path):
        old = _read_json(path)
        changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        if changed:
            raise ValueError(f"demo: {workdir} holds a run of a different configuration "
                             f"({', '.join(changed)} changed); its finished phases would be "
                             f"reused. Rerun with --fresh or pick another --workdir.")
        return
    with open(path, "w") as f:
        json.dump(fingerprint, f, indent=1, sort_keys=True)


def write_heldout_rewards(trainer, wd: str) -> dict:
    """UniGRPO's rewards on held-out prompts for the starting and the trained policy
    (`rl.heldout`) -> WD/heldout_rewards.json {before, after, compare}."""
    from mmada_jax.rl.heldout import compare_heldout, describe_heldout, heldout_rewards
    before = heldout_rewards(trainer, trainer.ref_params)
    after = heldout_rewards(trainer, trainer.state.params)
    out = dict(before=before, after=after, compare=compare_heldout(before, after))
    for line in describe_heldout(out["compare"]):
        print(f"[grpo] {line}", flush=True)
    tmp = os.path.join(wd, "heldout_rewards.json.tmp")
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, os.path.join(wd, "heldout_rewards.json"))
    return out


def run_demo(dc, workdir: str) -> str:
    import jax
    from mmada_jax import assets
    from mmada_jax.pipeline_report import write_demo_report
    os.makedirs(workdir, exist_ok=True)
    enable_compilation_cache(os.path.join(workdir, "jax_cache"))
    timer = Timer()
    t_start = time.perf_counter()
    stages = [s.strip() for s in str(dc.stages).split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"config.stages: unknown {unknown}; known {STAGES}")
    v = dc.variant
    cfgs = {s: _stage_config(s, v, workdir, dc) for s in STAGES}
    check_workdir_config(workdir, config_fingerprint(dc, cfgs))
    print(f"mmada-jax demo ({v}): {jax.device_count()} {jax.devices()[0].platform} device(s), "
          f"workdir {workdir}", flush=True)
    with timer("data: ShapesWorld"):
        build_data(cfgs["pretrain"])
    with timer("tokenizers"):
        train_text_tokenizer(dc, cfgs["pretrain"].data.tokenizer)
        tok_eval = train_image_tokenizer(dc, cfgs["pretrain"], cfgs["pretrain"].data.image_tokenizer)
        if dc.image_tokenizer.kind == "pool":
            for c in cfgs.values():
                c.data.image_tokenizer = "pool"
        text_tok = assets.text_tokenizer(cfgs["pretrain"])
        image_tok = assets.image_tokenizer(cfgs["pretrain"])
        tokens = (text_tok, image_tok)
        if dc.get("code_cache", True):
            build_code_caches(cfgs, image_tok, os.path.dirname(cfgs["pretrain"].data.tokenizer))
    results, prev = {}, None
    for stage in STAGES:
        if stage not in stages:
            continue
        cfg, wd = cfgs[stage], os.path.join(workdir, stage)
        if stage == "grpo":
            cfg.rl.init_from = os.path.join(workdir, "sft") if prev is None else prev
        elif prev is not None:
            cfg.train.init_from = prev
        with timer(f"train: {stage}"):
            if not _done(wd):
                if stage == "grpo":
                    from mmada_jax.rl.trainer import UniGRPO
                    tr = UniGRPO(cfg, wd, jax.devices()[:1], text_tok, image_tok)
                    tr.run(budget_s=float(dc.budget[stage]))
                    if int(tr.rl.heldout_chunks) > 0:
                        with timer("heldout rewards: grpo"):
                            write_heldout_rewards(tr, wd)
                    with open(os.path.join(wd, "DONE"), "w") as f:
                        f.write("{}")
                else:
                    train_stage(stage, cfg, wd, float(dc.budget[stage]), int(dc.calibrate_steps),
                                tokens, resize_at=float(dc.get("resize_at", 0.3)))
        with timer(f"eval: {stage}"):
            results[stage] = run_eval(stage, cfg, wd, dc.eval, tokens)
        prev = wd
    total = time.perf_counter() - t_start
    path = write_demo_report(workdir, [s for s in STAGES if s in results], results,
                             timer.times, total, dict(variant=v, image_tokenizer=getattr(
                                 image_tok, "name", ""), tokenizer_eval=tok_eval,
                                 config=dc.to_dict()))
    print(f"\nreport: {path} (total {total / 60:.1f} min)", flush=True)
    return path


def main(argv):
    del argv
    from absl import flags
    from absl import logging
    if flags.FLAGS["verbosity"].present == 0:  # progress lines only (as mmada_jax.train)
        logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    dc = f.config if f.config is not None else demo_config()
    if f.stages:
        dc = ml_collections.ConfigDict(dc.to_dict())
        dc.stages = f.stages
    if f.fresh and os.path.isdir(f.workdir):
        shutil.rmtree(f.workdir)
    run_demo(dc, f.workdir)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags
    config_flags.DEFINE_config_file("config", None, "Demo config (default: demo_config('cpu')).",
                                    lock_config=True)
    flags.DEFINE_string("workdir", "runs/demo", "Output directory.")
    flags.DEFINE_string("stages", None, "Comma-separated subset of pretrain,sft,grpo.")
    flags.DEFINE_bool("fresh", False, "Delete WORKDIR first.")
    sys.exit(app.run(main))
