"""UniGRPO's own objective on held-out prompts: the expected reward of a policy, measured by
sampling it the way the rollouts do on test-split prompts, for the starting (SFT) policy and the
trained one with the same prompts and the same sampling keys.

The rollout reward curve of a short stage draws new prompts every step, so its trend is mostly
which prompts came up; greedy held-out accuracy measures a different decoding than the one
trained. This eval is the stage's objective itself: `rl.heldout_chunks` chunks, each one
training step's worth of prompts per task (`rl.tasks.<task>.prompts`, so every compiled sampler
is reused) times `rl.group_size` samples, from the test split with `rl.heldout_seed`, for the
tasks in `rl.heldout_tasks` (default all).

    before = heldout_rewards(trainer, trainer.ref_params)
    after = heldout_rewards(trainer, trainer.state.params)
    compare_heldout(before, after)   # per task: mean reward, pass rate, prompts up / down, p
"""

from __future__ import annotations

import jax
import numpy as np

from mmada_jax.evals.paired import sign_test_p


def heldout_tasks(rl, tasks) -> list[str]:
    """`rl.heldout_tasks` (comma-separated; empty: every one of the stage's `tasks`)."""
    names = [t.strip() for t in str(rl.get("heldout_tasks", "")).split(",") if t.strip()]
    unknown = [t for t in names if t not in tasks]
    if unknown:
        raise ValueError(f"config.rl.heldout_tasks: {unknown} not among the stage's tasks "
                         f"{list(tasks)}")
    return names or list(tasks)


def check_heldout_config(rl, tasks) -> None:
    """Raises on a negative `rl.heldout_chunks` or, when it is on, an unknown held-out task
    (the trainer calls it at start, not after the stage)."""
    chunks = int(rl.get("heldout_chunks", 0))
    if chunks < 0:
        raise ValueError(f"config.rl.heldout_chunks={chunks}: needs >= 0 (0: off)")
    if chunks:
        heldout_tasks(rl, tasks)


def heldout_items(trainer, chunks: int, seed: int) -> list[dict]:
    """[chunks] of {task: that chunk's test-split items}."""
    tasks = heldout_tasks(trainer.rl, trainer.tasks)
    return [{t: trainer.prompts_for(t, c, split="test", seed=seed) for t in tasks}
            for c in range(chunks)]


def heldout_rewards(trainer, params, chunks: int | None = None, seed: int | None = None) -> dict:
    """{task: {prompt_means: [P] mean reward of each prompt's G samples, prompt_pass: [P] the
    share of them that pass, reward_mean, pass_rate, <component>: mean, prompts, samples}} for
    `params` on the held-out prompts."""
    rl = trainer.rl
    chunks = int(rl.get("heldout_chunks", 0) if chunks is None else chunks)
    seed = int(rl.get("heldout_seed", 1) if seed is None else seed)
    if chunks <= 0:
        raise ValueError(f"heldout_rewards: rl.heldout_chunks={chunks}; needs >= 1")
    gsz = int(rl.group_size)
    base_key = jax.random.key(seed * 7 + 3)
    acc: dict = {t: dict(rewards=[], passed=[], parts={})
                 for t in heldout_tasks(rl, trainer.tasks)}
    for c, items in enumerate(heldout_items(trainer, chunks, seed)):
        rb = trainer.rollout(params, c, items_by_task=items,
                             key=jax.random.fold_in(base_key, c))
        tasks = np.asarray(rb.task)
        for t in acc:
            sel = tasks == t
            acc[t]["rewards"].append(rb.rewards[sel])
            acc[t]["passed"].append(rb.passed[sel])
            for name, v in rb.parts.items():
                task, _, comp = name.partition("/")
                if task == t:
                    acc[t]["parts"].setdefault(comp, []).append(v)
    out = {}
    for t, a in acc.items():
        r = np.concatenate(a["rewards"]).astype(np.float64)
        if len(r) % gsz:
            raise ValueError(f"heldout_rewards: {len(r)} {t} samples is not a multiple of "
                             f"group_size {gsz}")
        passed = np.concatenate(a["passed"]).astype(np.float64)
        res = dict(prompts=len(r) // gsz, samples=gsz,
                   prompt_means=r.reshape(-1, gsz).mean(-1).round(6).tolist(),
                   prompt_pass=passed.reshape(-1, gsz).mean(-1).round(6).tolist(),
                   reward_mean=float(r.mean()), pass_rate=float(passed.mean()))
        for comp, v in a["parts"].items():
            res[comp] = float(np.concatenate(v).mean())
        out[t] = res
    return out


def _up_down(t: str, before, after) -> tuple[int, int]:
    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"compare_heldout: {t} has {a.size} prompts before and {b.size} "
                         "after (not the same held-out set)")
    return int((b > a + 1e-9).sum()), int((b < a - 1e-9).sum())


def compare_heldout(before: dict, after: dict) -> dict:
    """{task: {before, after, pass_before, pass_after, up, down, p[, pass_up, pass_down,
    pass_p]}}: prompts whose mean reward (pass share: the sampled accuracy) rose / fell, ties
    left out, and the exact two-sided sign test on them. The pass fields need `prompt_pass`
    on both sides (results written before it have none)."""
    out = {}
    for t in before:
        if t not in after:
            continue
        up, down = _up_down(t, before[t]["prompt_means"], after[t]["prompt_means"])
        out[t] = dict(before=before[t]["reward_mean"], after=after[t]["reward_mean"],
                      pass_before=before[t]["pass_rate"], pass_after=after[t]["pass_rate"],
                      prompts=len(before[t]["prompt_means"]),
                      samples=int(before[t]["samples"]), up=up, down=down,
                      p=sign_test_p(up, down))
        if "prompt_pass" in before[t] and "prompt_pass" in after[t]:
            pu, pd = _up_down(t, before[t]["prompt_pass"], after[t]["prompt_pass"])
            out[t].update(pass_up=pu, pass_down=pd, pass_p=sign_test_p(pu, pd))
    return out


def describe_heldout(compare: dict) -> list[str]:
    """One progress line per task of `compare_heldout`'s result."""
    return [f"held-out {t}: reward {c['before']:.3f} -> {c['after']:.3f}, pass rate "
            f"{c['pass_before']:.3f} -> {c['pass_after']:.3f} ({c['prompts']} prompts x "
            f"{c['samples']}; reward {c['up']} up, {c['down']} down, p {c['p']:.2g}"
            + (f"; pass rate {c['pass_up']} up, {c['pass_down']} down, p {c['pass_p']:.2g}"
               if "pass_up" in c else "") + ")"
            for t, c in compare.items()]
