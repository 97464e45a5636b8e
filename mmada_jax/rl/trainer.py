"""UniGRPO training (spec section 5) on the foundation's pieces: `training.loop.build` (mesh, model,
optimizer, state shardings), `TrainState`, `Checkpointer`, `MetricLogger`.

One outer step:
  1. prompts per task (`config.rl.tasks`: reasoning / vqa / t2i), each repeated G times;
  2. rollouts with the current policy through the samplers (`rl.rollout`), decoded;
  3. rewards per task (registry `rl.rewards`), group-normalized advantages, groups with no signal
     (constant rewards, or a pass rate outside [filter_low, filter_high]) weighted 0;
  4. mu * m fresh response-only masks with stratified ratios (`rl.masking.unigrpo_masks`), split
     into mu inner iterations of m masks each;
  5. old-policy and frozen-reference log-likelihoods on every mask (no gradient);
  6. mu inner updates; update i scores the masks of iteration i: the clipped GRPO objective with
     the k3 KL to the reference (`rl.losses.unigrpo_loss`) -> AdamW (the pure `grpo_step`).

    python -m mmada_jax.grpo --config experiments/sw_grpo.py --workdir runs/sw_grpo
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from mmada_jax.rl import advantages as adv_lib
from mmada_jax.rl import logprob, losses, masking
from mmada_jax.rl.config import GRPOConfig
from mmada_jax.sharding import use_mesh
from mmada_jax.training.ema import check_ema_decay
from mmada_jax.training.step import apply_gradients

EXTRA_SECTIONS = ("rl", "eval")  # config sections the foundation's validate() does not know


# ---------------------------------------------------------------------------- config
def stage_tasks(rl) -> list[str]:
    """The tasks a UniGRPO stage trains: those of `rl.tasks` with prompts > 0, in config order."""
    return [t for t, c in rl.tasks.items() if int(c.prompts) > 0]


def rl_config() -> ml_collections.ConfigDict:
    """Defaults of `config.rl` (see experiments/sw_grpo.py for a tuned copy)."""
    return ml_collections.ConfigDict(dict(
        steps=20, init_from="", seed=0, log_every=1, ckpt_every=10,
        group_size=4, num_iterations=2, mask_samples=1, t_min=0.1, t_max=0.9,
        clip_eps=0.2, clip_eps_high=0.0, beta=0.01, advantage_estimator="grpo", adv_eps=1e-4,
        policy_loss="grpo_clip", filter_low=0.0, filter_high=1.0,
        prompt_len=96,  # text and mmu prompts are left-padded to this many tokens
        # the held-out reward eval (`rl/heldout.py`, run by the demo after the stage): this many
        # chunks of one step's prompts per task from the test split, sampled as the rollouts
        # are, for the starting and the trained policy (0: off); `heldout_tasks`:
        # comma-separated, empty for every task with prompts
        heldout_chunks=0, heldout_seed=1, heldout_tasks="",
        # the fine-tuning anchor (`rl/anchor.py`, InstructGPT's PPO-ptx): each update adds
        # anchor_coeff x the stage config's own masked-token loss on a fresh batch of its
        # `anchor_tasks` rows (comma-separated names of config.tasks; 0: off)
        anchor_coeff=0.0, anchor_tasks="lm",
        # prompt replay (`rl/replay.py`): each task's `replay_share` of its prompts per step are
        # earlier prompts whose group pass rate was below replay_below, asked again at most
        # replay_uses times (0 share: off)
        replay_uses=2, replay_below=1.0, replay_capacity=256,
        # the update's rows (`update_rows`): only the rows of kept groups go through the
        # log-likelihood passes and the gradient step, padded with dropped rows (weight 0) up
        # to a multiple of this many rows, so a stage compiles a few batch sizes (0: every row,
        # one size). Rows of weight 0 add nothing to the loss, so the update is the same
        update_quantum=0,
        # each task's `loss_weight` (default 1) scales its kept rows in the loss's weighted mean
        # (`rl.losses.unigrpo_loss` weights): a task's share of the update without more rollouts
        tasks=dict(
            # 'equations' (weight 0: computed and logged as reasoning/equations, not rewarded)
            reasoning=dict(prompts=2, rewards=dict(correctness=1.0, format=1.0, equations=0.0),
                           pass_threshold=2.0, loss_weight=1.0, replay_share=0.0),
            # 'listing' (weight 0: logged as vqa/listing): the share of the think block's
            # claims about cells that the scene makes true (rewards_listing.py)
            # kinds: the questions asked, in turn (comma-separated, of RL_VQA_KINDS)
            vqa=dict(prompts=2, kinds="count,color,position",
                     rewards=dict(correctness=1.0, format=1.0, listing=0.0), pass_threshold=2.0,
                     loss_weight=1.0, replay_share=0.0),
            t2i=dict(prompts=2, rewards=dict(scene_judge=2.0), pass_threshold=2.0,
                     loss_weight=1.0, replay_share=0.0),
        ),
        # cache / stop_at_eos: the sampler's speed switches (`sampling.text`), off by default
        text_sampler=dict(gen_length=64, steps=32, block_length=32, temperature=1.0,
                          remasking="low_confidence", cache="none", stop_at_eos=False),
        image_sampler=dict(steps=8, guidance_scale=1.0, temperature=1.0, token_temperature=1.0),
    ))


def split_config(config):
    """(config the foundation validates, {section: ConfigDict} of the extra sections)."""
    d = config.to_dict()
    extras = {k: ml_collections.ConfigDict(d.pop(k)) for k in EXTRA_SECTIONS if k in d}
    return ml_collections.ConfigDict(d), extras


def grpo_config(rl) -> GRPOConfig:
    """The rl engineer's frozen GRPOConfig (hashable: a static argument of the jitted step)."""
    return GRPOConfig(
        group_size=int(rl.group_size), num_iterations=int(rl.num_iterations),
        t_min=float(rl.t_min), t_max=float(rl.t_max), clip_eps=float(rl.clip_eps),
        clip_eps_high=float(rl.clip_eps_high) or None, beta=float(rl.beta),
        advantage_estimator=str(rl.advantage_estimator), adv_eps=float(rl.adv_eps),
        policy_loss=str(rl.policy_loss), filter_low=float(rl.filter_low),
        filter_high=float(rl.filter_high), pass_threshold=None, rewards={})


# ---------------------------------------------------------------------------- pure functions
def make_sequence_logprob(model, mask_id: int):
    """fn(params, tokens [B,L], key_mask [B,L], positions [B,L], masks [B,m,L]) -> [B]: the
    m-averaged masked log-likelihood of each response (`rl.logprob.sequence_logprob`)."""
    def fn(params, tokens, key_mask, positions, masks):
        def logits_fn(noisy):
            return model.apply({"params": params}, noisy, key_mask=key_mask, positions=positions)
        return logprob.sequence_logprob(logits_fn, tokens, jnp.moveaxis(masks, 1, 0), mask_id)
    return fn


def make_grpo_step(model, tx, mask_id: int, g: GRPOConfig, clip_norm: float = 1.0,
                   ema_decay: float = 0.0, anchor_loss=None, anchor_coeff: float = 0.0):
    """Pure `grpo_step(state, batch[, anchor_batch]) -> (state, metrics)`.

    batch: tokens, key_mask, positions [B, L]; masks [B, m, L] (this iteration's); logp_old,
    logp_ref, advantages, weights [B]. Metrics: the loss's scalars, grad_norm, update_skipped and
    per-row arrays (row_kl, row_ratio, row_clipped, row_logp) for per-task summaries.
    `anchor_loss` (`training.step.make_loss_fn` of the anchor tasks, `rl/anchor.py`) adds
    `anchor_coeff` x its loss on `anchor_batch` (dict task -> rows), corrupted with the state's
    rng at its step; metrics then carry `anchor_loss` and `loss` is the sum.
    Clipping, the non-finite guard and the parameters' moving average (`ema_decay` > 0, with a
    state that keeps one) are the train step's (`training.step.apply_gradients`)."""
    seq_lp = make_sequence_logprob(model, mask_id)

    def loss_fn(params, batch, anchor_batch, rng):
        lp = seq_lp(params, batch["tokens"], batch["key_mask"], batch["positions"],
                    batch["masks"])
        loss, m = losses.unigrpo_loss(
            lp, batch["logp_old"], batch["logp_ref"], batch["advantages"], batch["weights"],
            clip_eps=g.clip_eps, beta=g.beta, clip_eps_high=g.clip_eps_high,
            policy_loss=g.policy_loss)
        if anchor_loss is not None:
            a_loss, _ = anchor_loss(params, anchor_batch, rng)
            loss = loss + anchor_coeff * a_loss
            m = dict(m, loss=loss, anchor_loss=jax.lax.stop_gradient(a_loss))
        return loss, (m, lp)

    def step(state, batch, anchor_batch=None):
        if (anchor_loss is None) != (anchor_batch is None):
            raise ValueError("grpo_step: pass anchor_batch exactly when an anchor loss is set")
        rng = (None if anchor_loss is None else  # the anchor rows' corruption, as the train step's
               jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step))
        (loss, (m, lp)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, anchor_batch, rng)
        new_state, upd = apply_gradients(state, grads, loss, tx, clip_norm,
                                         ema_decay=ema_decay)
        lp = jax.lax.stop_gradient(lp)
        ratio = jnp.exp(lp - batch["logp_old"])
        hi = g.clip_eps if g.clip_eps_high is None else g.clip_eps_high
        adv = batch["advantages"]
        clipped = ((adv > 0) & (ratio > 1 + hi)) | ((adv < 0) & (ratio < 1 - g.clip_eps))
        metrics = dict(m, **upd, row_kl=losses.k3_kl(lp, batch["logp_ref"]), row_ratio=ratio,
                       row_clipped=clipped, row_logp=lp)
        return new_state, metrics

    return step


def _rows_sharding(mesh, x):
    return NamedSharding(mesh, P(("data", "fsdp"), *([None] * (np.ndim(x) - 1))))


class GRPOFunctions:
    """The jitted pieces on a mesh: `logprob(params, rows, masks)` and `step(state, batch)`."""

    def __init__(self, setup, g: GRPOConfig, anchor_config=None, anchor_coeff: float = 0.0):
        self.setup, self.g = setup, g
        model = setup.model
        mask_id = setup.layout.mask
        self._lp = jax.jit(make_sequence_logprob(model, mask_id))
        clip = float(setup.config.optim.clip_norm or 0.0)
        ema = check_ema_decay(setup.config.train.get("ema_decay", 0.0))
        anchor = None
        if anchor_config is not None:
            from mmada_jax.training.step import make_loss_fn
            anchor = make_loss_fn(model, anchor_config, setup.layout)
        self._step = jax.jit(make_grpo_step(model, setup.tx, mask_id, g, clip, ema, anchor,
                                            anchor_coeff), donate_argnums=(0,))
        self.param_shardings = setup.state_shardings.params

    def put(self, tree):
        mesh = self.setup.mesh
        return jax.tree_util.tree_map(
            lambda x: jax.device_put(np.asarray(x), _rows_sharding(mesh, x)), tree)

    def logprob(self, params, rows, masks):
        with use_mesh(self.setup.mesh):
            r = self.put(dict(rows, masks=masks))
            return self._lp(params, r["tokens"], r["key_mask"], r["positions"], r["masks"])

    def step(self, state, batch, anchor_batch=None):
        with use_mesh(self.setup.mesh):
            return self._step(state, self.put(batch),
                              None if anchor_batch is None else self.put(anchor_batch))


# ---------------------------------------------------------------------------- host side
RL_VQA_KINDS = ("count", "color", "position", "exists")  # questions with one short answer


def vqa_kinds(rl) -> tuple:
    """`config.rl.tasks.vqa.kinds` ("count,position") as a checked tuple: the kinds of the VQA
    rollout prompts, asked in turn."""
    raw = str(rl.tasks.vqa.get("kinds", "count,color,position"))
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = [k for k in kinds if k not in RL_VQA_KINDS]
    if not kinds or bad:
        raise ValueError(f"config.rl.tasks.vqa.kinds={raw!r}: expected a comma-separated list of "
                         f"{', '.join(RL_VQA_KINDS)}" + (f" (unknown: {bad})" if bad else ""))
    return kinds


def rewards_for(task: str, tcfg, parser_judge=None):
    """CombinedReward of a task from `config.rl.tasks.<task>.rewards` (name -> weight)."""
    from mmada_jax.rl.rewards import CombinedReward
    options = {}
    if "scene_judge" in tcfg.rewards:
        options["scene_judge"] = dict(judge=parser_judge or scene_judge)
    return CombinedReward.from_weights(dict(tcfg.rewards), options)


def scene_judge(image, scene_json) -> float:
    """ShapesWorld parser: object F1 of the parsed image against the prompt's scene, in [0, 1]."""
    from mmada_jax.data.shapesworld import parser, scenes
    return float(parser.image_reward(image, scenes.Scene.from_json(scene_json)))


@dataclasses.dataclass
class RolloutBatch:
    """Rollouts of one outer step, all tasks, prompt-major groups of G."""
    rows: dict            # tokens, key_mask, positions [N, L]
    region: np.ndarray    # [N, L]
    task: list            # [N] task names
    rewards: np.ndarray   # [N]
    passed: np.ndarray    # [N] bool
    parts: dict           # reward component name -> [N] (unweighted)
    completions: list
    prompts: list


def task_loss_weights(rl, tasks) -> np.ndarray:
    """float32 [N]: `config.rl.tasks.<task>.loss_weight` (default 1) of each row's task."""
    w = {}
    for t in dict.fromkeys(tasks):
        v = float(rl.tasks[t].get("loss_weight", 1.0))
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"config.rl.tasks.{t}.loss_weight={v}: expected a finite weight >= 0")
        w[t] = v
    return np.asarray([w[t] for t in tasks], np.float32)


def update_rows(weights, quantum: int) -> np.ndarray:
    """int [n]: the rows an update runs on (`config.rl.update_quantum`). quantum 0: every row.
    Otherwise the rows of weight > 0, then rows of weight 0 (which add nothing to the loss) up to
    the next multiple of `quantum`, at most every row: a stage sees a few batch sizes."""
    w = np.asarray(weights)
    if quantum < 0:
        raise ValueError(f"config.rl.update_quantum={quantum}: expected >= 0")
    if not quantum:
        return np.arange(len(w))
    kept, rest = np.flatnonzero(w > 0), np.flatnonzero(w <= 0)
    size = min(len(w), -(-len(kept) // quantum) * quantum)
    return np.concatenate([kept, rest[:size - len(kept)]])


def scatter_row_metrics(metrics: dict, idx, n: int) -> dict:
    """A step's per-row metrics (row_*, over the update's rows `idx`) back on all n rollout
    rows: NaN (row_kl, row_ratio, row_logp) or False (row_clipped) where a row was left out,
    and `row_updated` [n] bool marking the rows the update ran on."""
    idx = np.asarray(idx)
    out = dict(metrics)
    for k, v in metrics.items():
        if k.startswith("row_"):
            v = np.asarray(v)
            full = np.zeros(n, bool) if v.dtype == bool else np.full(n, np.nan, np.float32)
            full[idx] = v
            out[k] = full
    out["row_updated"] = np.zeros(n, bool)
    out["row_updated"][idx] = True
    return out


def group_stats(rewards, passed, tasks, g: GRPOConfig, group_size: int):
    """(advantages [N], weights [N]) with groups filtered per `g` (pass rates from `passed`)."""
    r = np.asarray(rewards, np.float32)
    adv = np.asarray(adv_lib.group_advantages(r, group_size, eps=g.adv_eps,
                                              estimator=g.advantage_estimator))
    keep = np.asarray(adv_lib.group_filter(r, group_size, low=g.filter_low, high=g.filter_high,
                                           passed=np.asarray(passed)))
    return adv, keep


class UniGRPO:
    """Collects rollouts and runs the UniGRPO updates; `run(stop_after)` is the outer loop."""

    def __init__(self, config, workdir: str, devices=None, text_tok=None, image_tok=None,
                 log_stream=None):
        from mmada_jax import assets
        from mmada_jax.training.checkpoint import Checkpointer, restore_params
        from mmada_jax.training.logging import MetricLogger
        from mmada_jax.training.loop import build
        from mmada_jax.training.step import init_train_state, with_params

        base, extras = split_config(config)
        rl = rl_config()
        if "rl" in extras:
            rl.update(extras["rl"])
        self.rl, self.g = rl, grpo_config(rl)
        # the stage's settings are checked before anything is built or written: a bad task
        # setting fails here, not at the first rollout or after the stage
        self.tasks = stage_tasks(rl)
        if not self.tasks:
            raise ValueError("config.rl.tasks: no task has prompts > 0")
        self.rewards = {t: rewards_for(t, rl.tasks[t]) for t in self.tasks}
        if "vqa" in self.tasks:
            vqa_kinds(rl)
        task_loss_weights(rl, self.tasks)
        from mmada_jax.rl.heldout import check_heldout_config
        check_heldout_config(rl, self.tasks)
        from mmada_jax.rl.replay import PromptReplay
        self.replay = PromptReplay.from_config(rl, self.tasks)
        base.train.steps = int(rl.steps) * int(rl.num_iterations)  # the lr schedule's updates
        self.config, self.workdir = base, workdir
        self.setup = build(base, devices)
        self.layout = self.setup.layout
        self.model = self.setup.model
        self.text_tok = text_tok or assets.text_tokenizer(base, self.layout)
        self.image_tok = image_tok or assets.image_tokenizer(base, self.layout)
        from mmada_jax.rl import anchor as anchor_lib
        from mmada_jax.training.loop import make_batch_source
        coeff = anchor_lib.anchor_coeff(rl)
        anchor_cfg = (anchor_lib.anchor_config(base, anchor_lib.anchor_task_names(rl, base))
                      if coeff > 0 else None)
        self.fns = GRPOFunctions(self.setup, self.g, anchor_cfg, coeff)
        # the anchor rows' batch source (None: no anchor); its position is checkpoint data
        self.anchor = (make_batch_source(anchor_cfg, self.layout, self.text_tok, self.image_tok)
                       if anchor_cfg is not None else None)
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))
        self.ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=base.train.keep_ckpts,
                                 save_every=int(rl.ckpt_every), async_save=base.train.async_ckpt)
        init_from = rl.init_from or base.train.init_from
        state = init_train_state(self.model, self.setup.tx, base, self.setup.mesh,
                                 jax.random.key(base.train.seed), self.setup.state_shardings)
        if init_from:
            ref, src = restore_params(init_from, self.setup.abstract_state)
            print(f"[grpo] policy and reference from {init_from} step {src}", flush=True)
        else:
            ref = state.params
            print("[grpo] warning: no rl.init_from; starting from random parameters", flush=True)
        self.ref_params = jax.tree_util.tree_map(jnp.copy, ref)
        self.start = self.ckpt.latest_step() or 0
        if self.start:
            state, data_state = self.ckpt.restore(self.start, self.setup.abstract_state)
            print(f"[grpo] resumed from step {self.start}", flush=True)
            if self.anchor is not None and (data_state or {}).get("anchor") is not None:
                self.anchor.set_state(data_state["anchor"])
        elif init_from:
            state = with_params(state, ref)
        self.state = state
        self.logger = MetricLogger(workdir, int(rl.steps), "grpo", base.train.tensorboard,
                                   log_stream, self.start)
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        if self.start and self.replay.active:
            at = self.replay.restore(workdir)
            if at is not None and at != self.start:
                print(f"[grpo] warning: the prompt-replay queue was saved after step {at}, the "
                      f"checkpoint is step {self.start}; resuming with the saved queue",
                      flush=True)
        n = sum(int(rl.tasks[t].prompts) for t in self.tasks) * int(rl.group_size)
        dp = self.setup.mesh.shape["data"] * self.setup.mesh.shape["fsdp"]
        if n % dp:
            raise ValueError(f"config.rl: {n} rollouts per step (sum of prompts x group_size) "
                             f"is not divisible by the data-parallel size {dp}")
        q = int(rl.update_quantum)
        if q < 0 or q % dp:
            raise ValueError(f"config.rl.update_quantum={q}: expected 0 (every row) or a "
                             f"positive multiple of the data-parallel size {dp}")

    # ------------------------------------------------------------------ rollouts
    def prompts_for(self, task: str, step: int, split: str = "train",
                    seed: int | None = None) -> list[dict]:
        """The step's `rl.tasks[task].prompts` items of `split` (seeded by rl.seed and the step,
        or by `seed`)."""
        from mmada_jax.data.shapesworld.scenes import max_objects_of
        from mmada_jax.evals import shapesworld_eval as swe
        n = int(self.rl.tasks[task].prompts)
        m = max_objects_of(self.config.get("data"))
        seed = (int(self.rl.seed) if seed is None else int(seed)) * 100003 + step
        if task == "reasoning":
            from mmada_jax.data.shapesworld.reasoning import difficulty
            return swe.reasoning_items(n, split, seed, **difficulty(self.config.get("data")))
        if task == "vqa":  # kinds in turn across steps: 2 prompts a step still cover 3 kinds
            return swe.vqa_items(n, split, seed, kinds=vqa_kinds(self.rl), max_objects=m,
                                 first_kind=step * n)
        if task == "t2i":
            from mmada_jax.data.shapesworld.language import caption_style
            items = swe.t2i_items(1, split, seed, max_objects=m,
                                  caption_style=caption_style(self.config.get("data")))
            rng = np.random.default_rng(seed)
            return [items[i] for i in rng.choice(len(items), n, replace=n > len(items))]
        raise ValueError(f"config.rl.tasks: unknown task {task!r} (reasoning, vqa, t2i)")

    def step_prompts(self, step: int) -> tuple[dict, dict]:
        """({task: items}, {task: asks left per item}) of training step `step`: each task's
        fresh prompts, the first ones replaced by queued unsolved prompts where replay is on."""
        items, left = {}, {}
        for t in self.tasks:
            items[t], left[t] = self.replay.take(t, self.prompts_for(t, step))
        return items, left

    def rollout(self, params, step: int, items_by_task: dict | None = None,
                key=None) -> RolloutBatch:
        """group_size samples of each task's prompts for `step` (or of `items_by_task`, with
        the sampling `key`: the held-out reward eval, `rl/heldout.py`), scored."""
        from mmada_jax.rl import rollout as ro
        from mmada_jax.sampling.image import ImageSamplerConfig
        from mmada_jax.sampling.text import TextSamplerConfig
        rl, lay, gsz = self.rl, self.layout, int(self.rl.group_size)
        tcfg = TextSamplerConfig(**dict(rl.text_sampler))
        icfg = ImageSamplerConfig(**dict(rl.image_sampler))
        if key is None:
            key = jax.random.fold_in(jax.random.key(int(rl.seed) + 17), step)
        d = self.config.data
        parts, tasks, rewards, passed, comps, prompts = [], [], [], [], [], []
        pieces = {}
        for ti, task in enumerate(self.tasks):
            if items_by_task is not None and task not in items_by_task:
                continue
            items = (items_by_task[task] if items_by_task is not None
                     else self.prompts_for(task, step))
            k = jax.random.fold_in(key, ti)
            if task == "t2i":
                s = ro.sample_images(self.model, params, ro.repeat([it["prompt"] for it in items],
                                                                  gsz), lay, self.text_tok,
                                     self.image_tok, icfg, k, max_text_len=int(d.max_text_len),
                                     num_image_tokens=int(d.num_image_tokens))
                fields = dict(metadata=ro.repeat([it["scene"] for it in items], gsz))
            else:
                if task == "vqa":
                    codes = ro.scene_codes([it["scene"] for it in items], self.image_tok,
                                           int(d.image_size))
                    ids = [ro.mmu_prompt(c, it["question"], lay, self.text_tok)
                           for c, it in zip(codes, items)]
                else:
                    ids = [ro.chat_prompt(it["question"], lay, self.text_tok) for it in items]
                s = ro.sample_text(self.model, params, ro.repeat(ids, gsz), lay, self.text_tok,
                                   tcfg, k, prompt_len=int(rl.prompt_len))
                fields = dict(answers=ro.repeat([it["answer"] for it in items], gsz))
                if task == "vqa":  # the scene, for rewards that check what the answer read
                    fields["metadata"] = ro.repeat([it["scene"] for it in items], gsz)
            qs = ro.repeat([it.get("question", it.get("prompt")) for it in items], gsz)
            total, comp = self.rewards[task](qs, s.completions, **fields)
            thr = self.rl.tasks[task].pass_threshold
            parts.append(s)
            tasks += [task] * len(total)
            rewards.append(total)
            passed.append(total >= float(thr))
            comps += s.completions
            prompts += qs
            for name, v in comp.items():
                pieces.setdefault(f"{task}/{name}", []).append(v)
        s = ro.concat(parts, self.row_length())
        return RolloutBatch(dict(tokens=s.tokens, key_mask=s.key_mask, positions=s.positions),
                            s.region, tasks, np.concatenate(rewards), np.concatenate(passed),
                            {k: np.concatenate(v) for k, v in pieces.items()}, comps, prompts)

    def row_length(self) -> int:
        """Fixed rollout row length (one compile): text P + gen, t2i T + V + 3."""
        d, n = self.config.data, 0
        if any(t != "t2i" for t in self.tasks):
            n = int(self.rl.prompt_len) + int(self.rl.text_sampler.gen_length)
        if "t2i" in self.tasks:
            n = max(n, int(d.max_text_len) + int(d.num_image_tokens) + 3)
        return n

    # ------------------------------------------------------------------ one outer step
    def train_step(self, step: int) -> dict:
        rl, g = self.rl, self.g
        t0 = time.perf_counter()
        old_params = self.state.params
        items, left = self.step_prompts(step)
        rb = self.rollout(old_params, step, items)
        self._last_rollout = rb
        t_roll = time.perf_counter() - t0
        gsz = int(rl.group_size)
        replay_log = self._update_replay(rb, items, left)
        adv, keep = group_stats(rb.rewards, rb.passed, rb.task, g, gsz)
        weights = keep.astype(np.float32) * task_loss_weights(rl, rb.task)
        if weights.sum() == 0 and self.anchor is None:  # no kept group of a task with a loss
            # weight and no anchor: no update (AdamW would still decay weights), and no
            # log-likelihood passes either (with an anchor, its loss alone is the update)
            zero = np.zeros(len(rb.rewards), np.float32)
            ms = [dict(loss=0.0, policy_loss=0.0, kl=0.0, clip_fraction=0.0, ratio_mean=1.0,
                       grad_norm=0.0, row_kl=zero, row_clipped=zero.astype(bool))]
            print(f"[grpo] step {step + 1}: every group was filtered out; no update", flush=True)
            return {**self._summarize(step, rb, adv, keep, ms, t_roll,
                                      time.perf_counter() - t0), **replay_log}
        mu, m = int(rl.num_iterations), int(rl.mask_samples)
        key = jax.random.fold_in(jax.random.key(int(rl.seed) + 29), step)
        masks, _ = masking.unigrpo_masks(key, jnp.asarray(rb.region), mu * m, g.t_min, g.t_max,
                                         gsz)
        masks = np.asarray(masks).reshape(mu, m, *rb.region.shape).transpose(0, 2, 1, 3)
        idx = update_rows(weights, int(rl.update_quantum))
        if not len(idx):  # the anchor's update alone: a quantum of rows of weight 0
            idx = np.arange(min(int(rl.update_quantum), len(weights)))
        rows = {k: np.asarray(v)[idx] for k, v in rb.rows.items()}
        masks = masks[:, idx]
        old = [np.asarray(self.fns.logprob(old_params, rows, masks[i])) for i in range(mu)]
        ref = [np.asarray(self.fns.logprob(self.ref_params, rows, masks[i]))
               for i in range(mu)] if g.beta > 0 else old
        ms = []
        for i in range(mu):
            batch = dict(rows, masks=masks[i], logp_old=old[i], logp_ref=ref[i],
                         advantages=adv[idx].astype(np.float32), weights=weights[idx])
            anchor_batch = next(self.anchor) if self.anchor is not None else None
            self.state, mt = self.fns.step(self.state, batch, anchor_batch)
            ms.append(scatter_row_metrics(jax.device_get(mt), idx, len(weights)))
        return {**self._summarize(step, rb, adv, keep, ms, t_roll, time.perf_counter() - t0),
                **replay_log}

    def _update_replay(self, rb, items, left) -> dict:
        """Queues this step's unsolved prompts; returns the replay scalars to log (a replayed
        prompt is one with fewer asks left than a new one)."""
        if not self.replay.active:
            return {}
        from mmada_jax.rl.replay import group_pass_rates
        tasks, out = np.asarray(rb.task), {}
        for t, n in self.replay.counts.items():
            rates = group_pass_rates(np.asarray(rb.passed)[tasks == t], int(self.rl.group_size))
            out[f"{t}/replayed"] = float(sum(lf < self.replay.uses for lf in left[t]))
            self.replay.update(t, items[t], left[t], rates)
            out[f"{t}/replay_queued"] = float(len(self.replay.queues[t]))
            out[f"{t}/replay_dropped"] = float(self.replay.dropped[t])
        return out

    def _summarize(self, step, rb, adv, keep, ms, t_roll, t_all) -> dict:
        tasks = np.asarray(rb.task)
        out = {k: float(np.mean([x[k] for x in ms])) for k in
               ("loss", "policy_loss", "kl", "clip_fraction", "ratio_mean", "grad_norm")}
        if "anchor_loss" in ms[0]:
            out["anchor_loss"] = float(np.mean([x["anchor_loss"] for x in ms]))
        out["kept_fraction"] = float(keep.mean())
        out["reward_mean"] = float(rb.rewards.mean())
        out["time/rollout_s"], out["time/step_s"] = t_roll, t_all
        rlen = rb.region.sum(-1)
        for t in dict.fromkeys(rb.task):
            sel = tasks == t
            out[f"{t}/reward_mean"] = float(rb.rewards[sel].mean())
            out[f"{t}/reward_std"] = float(rb.rewards[sel].std())
            out[f"{t}/pass_rate"] = float(rb.passed[sel].mean())
            out[f"{t}/kept_fraction"] = float(keep[sel].mean())
            out[f"{t}/response_len"] = float(rlen[sel].mean())
            # over the rows the update ran on (every row with rl.update_quantum 0)
            ran = np.asarray(ms[0].get("row_updated", np.ones(len(tasks), bool)))[sel]
            for name, key in (("kl", "row_kl"), ("clip_fraction", "row_clipped")):
                out[f"{t}/{name}"] = float(np.mean(
                    [np.asarray(x[key])[sel][ran].mean() if ran.any() else 0.0 for x in ms]))
        for k, v in rb.parts.items():
            out[f"{k}"] = float(v.mean())
        return out

    def sample_log(self, step: int, rb: "RolloutBatch", k: int = 1):
        """A few decoded responses per text task -> WORKDIR/samples.jsonl."""
        if jax.process_index() != 0:
            return
        seen = {}
        with open(os.path.join(self.workdir, "samples.jsonl"), "a") as f:
            for t, p, c, r in zip(rb.task, rb.prompts, rb.completions, rb.rewards):
                if t == "t2i" or seen.get(t, 0) >= k:
                    continue
                seen[t] = seen.get(t, 0) + 1
                f.write(json.dumps(dict(step=step, task=t, prompt=p, response=c,
                                        reward=float(r))) + "\n")

    def run(self, stop_after: int | None = None, budget_s: float | None = None) -> list[dict]:
        """Outer steps until rl.steps, `stop_after` steps of this call, or `budget_s` seconds
        (stops before a step that the last step's duration says would overrun)."""
        total = int(self.rl.steps)
        step, history = self.start, []
        t0, last = time.perf_counter(), 0.0
        while step < total:
            if budget_s is not None and time.perf_counter() - t0 + last > budget_s:
                print(f"[grpo] time budget {budget_s:.0f}s reached after step {step}", flush=True)
                break
            ts = time.perf_counter()
            out = self.train_step(step)
            last = time.perf_counter() - ts
            step += 1
            rate = self.logger.rate(step)
            scalars = self.logger.log(step, out, dict(steps_per_s=rate))
            if jax.process_index() == 0:
                print("[grpo]   " + " | ".join(
                    f"{t} reward {out[f'{t}/reward_mean']:.2f}+-{out[f'{t}/reward_std']:.2f} "
                    f"pass {out[f'{t}/pass_rate']:.2f} kept {out[f'{t}/kept_fraction']:.2f}"
                    for t in self.tasks) + f" | kl {out['kl']:.4f} clip {out['clip_fraction']:.2f}"
                    f" | rollout {out['time/rollout_s']:.0f}s of {out['time/step_s']:.0f}s",
                    flush=True)
            history.append(dict(scalars, step=step))
            if jax.process_index() == 0:
                with open(self.metrics_path, "a") as f:
                    f.write(json.dumps(dict(scalars, step=step)) + "\n")
            self.sample_log(step, self._last_rollout)
            if self.replay.active and jax.process_index() == 0:
                self.replay.save(self.workdir, step)
            self.ckpt.save(step, self.state, self.data_state(step))
            if stop_after is not None and step - self.start >= stop_after:
                break
        self.ckpt.save_final(step, self.state, self.data_state(step))
        self.close()
        return history

    def close(self) -> None:
        """Closes the checkpointer, the metric writers and the anchor's batch source (`run` ends
        with it; a caller that only samples, such as an eval, calls it when done)."""
        self.ckpt.close()
        self.logger.close()
        if hasattr(self.anchor, "close"):
            self.anchor.close()

    def data_state(self, step: int) -> dict:
        """What a checkpoint keeps besides the train state: the step and, with an anchor, its
        batch source's position (a resumed stage draws the anchor rows it would have drawn)."""
        out = {"step": step}
        if self.anchor is not None:
            out["anchor"] = self.anchor.get_state()
        return out


def train_grpo(config, workdir: str, *, stop_after: int | None = None, devices=None,
               text_tok=None, image_tok=None, log_stream=None, budget_s=None) -> dict:
    """Run (or resume) UniGRPO in `workdir`; returns {'history', 'state', 'setup'}."""
    trainer = UniGRPO(config, workdir, devices, text_tok, image_tok, log_stream)
    history = trainer.run(stop_after, budget_s)
    return dict(history=history, state=trainer.state, setup=trainer.setup)
