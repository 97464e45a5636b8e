"""Prompt replay for UniGRPO: prompts the policy did not solve are asked again in later steps.

Each step draws `rl.tasks[t].prompts` new prompts, so a prompt whose group the policy got partly
wrong (the only groups that carry a gradient once most answers are right) is seen once. With
`rl.tasks[t].replay_share = s > 0`, round(s * prompts) of the task's prompts each step come from a
queue of earlier prompts whose group pass rate was below `rl.replay_below`, oldest first; the rest
are new. A prompt is asked again at most `rl.replay_uses` times, and leaves the queue as soon as a
group solves it; past `rl.replay_capacity` queued prompts the oldest are dropped (counted).

The queue is plain JSON (prompt items are JSON-able dicts), written to WORKDIR/replay.json after
every step and read back when a stage resumes. Every host derives the same queue from the same
rewards; on a multi-host resume each reads process 0's file, so the workdir must be shared, as
it already must be for the checkpoints.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

import numpy as np

FILE = "replay.json"


def replay_counts(rl, tasks: Sequence[str]) -> dict[str, int]:
    """Replayed prompts per step for each task (round(replay_share * prompts)); a share outside
    [0, 1] is an error naming its key."""
    out = {}
    for t in tasks:
        share = float(rl.tasks[t].get("replay_share", 0.0))
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"config.rl.tasks.{t}.replay_share={share}: must be in [0, 1]")
        out[t] = int(round(share * int(rl.tasks[t].prompts)))
    return out


class PromptReplay:
    """Per-task FIFO queues of unsolved prompts: entries {'item': dict, 'left': asks left}."""

    def __init__(self, counts: Mapping[str, int], uses: int = 2, below: float = 1.0,
                 capacity: int = 256):
        self.counts = {t: int(n) for t, n in counts.items() if int(n) > 0}
        self.uses, self.below, self.capacity = int(uses), float(below), int(capacity)
        for key, value, ok in (("replay_uses", self.uses, self.uses >= 1),
                               ("replay_capacity", self.capacity, self.capacity >= 1),
                               ("replay_below", self.below, 0.0 < self.below <= 1.0)):
            if not ok:
                raise ValueError(f"config.rl.{key}={value}: replay_uses and replay_capacity "
                                 "must be >= 1, replay_below in (0, 1]")
        self.queues: dict[str, list[dict]] = {t: [] for t in self.counts}
        self.dropped = {t: 0 for t in self.counts}

    @classmethod
    def from_config(cls, rl, tasks: Sequence[str]) -> "PromptReplay":
        return cls(replay_counts(rl, tasks), rl.replay_uses, rl.replay_below, rl.replay_capacity)

    @property
    def active(self) -> bool:
        return bool(self.counts)

    def take(self, task: str, fresh: Sequence[dict]) -> tuple[list[dict], list[int]]:
        """The step's prompts of `task`: up to counts[task] queued ones (oldest first, removed
        from the queue) then new ones from `fresh`, len(fresh) in all. Returns (items, left):
        left[i] is how many more asks item i may get after this one (new: `uses`)."""
        n = len(fresh)
        if task not in self.counts:
            return list(fresh), [self.uses] * n
        q = self.queues[task]
        k = min(self.counts[task], len(q), n)
        taken, self.queues[task] = q[:k], q[k:]
        items = [e["item"] for e in taken] + list(fresh[:n - k])
        left = [int(e["left"]) - 1 for e in taken] + [self.uses] * (n - k)
        return items, left

    def update(self, task: str, items: Sequence[dict], left: Sequence[int],
               pass_rates: Sequence[float]):
        """Queues the prompts whose group pass rate was below `below` and that have asks left."""
        if task not in self.counts:
            return
        q = self.queues[task]
        for it, lf, pr in zip(items, left, np.asarray(pass_rates, np.float64)):
            if pr < self.below and lf > 0:
                q.append(dict(item=it, left=int(lf)))
        over = len(q) - self.capacity
        if over > 0:
            del q[:over]
            self.dropped[task] += over

    def state(self) -> dict:
        return dict(queues=self.queues, dropped=self.dropped)

    def load_state(self, state: Mapping):
        for t in self.counts:
            self.queues[t] = [dict(item=e["item"], left=int(e["left"]))
                              for e in state.get("queues", {}).get(t, [])]
            self.dropped[t] = int(state.get("dropped", {}).get(t, 0))

    def save(self, workdir: str, step: int):
        """WORKDIR/replay.json, written atomically (a temp file renamed over it)."""
        path = os.path.join(workdir, FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(step=int(step), **self.state()), f)
        os.replace(tmp, path)

    def restore(self, workdir: str) -> int | None:
        """Loads WORKDIR/replay.json if there is one; returns the step it was written after."""
        path = os.path.join(workdir, FILE)
        if not self.active or not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable prompt-replay state ({e}); delete it to "
                             "resume with an empty queue") from None
        self.load_state(state)
        return int(state.get("step", 0))


def group_pass_rates(passed: np.ndarray, group_size: int) -> np.ndarray:
    """[N] pass flags in prompt-major groups -> [N / group_size] pass rates."""
    p = np.asarray(passed, np.float64)
    if p.size % group_size:
        raise ValueError(f"{p.size} rollouts are not whole groups of {group_size}")
    return p.reshape(-1, group_size).mean(-1)
