"""How a demo stage sizes itself to its time budget (`demo.plan_steps`, `demo.train_stage`), with
the trainer replaced by a simulated one on a simulated clock: a short timing that is off, a
re-size over a longer window, the deadline as the guard."""

import json
import math
import os

import ml_collections
import pytest

from mmada_jax import demo


def test_plan_steps():
    # 100 s left, 10 s to resume, 5 s margin: 85 s at 10 steps/s x 0.97
    assert demo.plan_steps(40, 10.0, 100.0, 10.0, cap=10_000) == 40 + int(85 * 10 * 0.97)
    assert demo.plan_steps(40, 10.0, 100.0, 10.0, cap=500) == 500  # the cap holds
    assert demo.plan_steps(40, 10.0, 3.0, 10.0, cap=500) == 40  # no time left: no more steps
    assert demo.plan_steps(0, 2.0, 60.0, 0.0, cap=10**6, safety=1.0) == 110


class SimulatedRun:
    """`train` stand-in: steps at `true_rate` after `overhead` seconds per call on a fake clock;
    the first call's logged rates read `timed_rate` (a short timing that is off)."""

    def __init__(self, true_rate, timed_rate, overhead):
        self.clock, self.step, self.calls = 1000.0, 0, []
        self.true_rate, self.timed_rate, self.overhead = true_rate, timed_rate, overhead

    def perf_counter(self):
        return self.clock

    def train(self, cfg, workdir, *, stop_after=None, batch_source=None, devices=None,
              deadline=None):
        del workdir, batch_source, devices
        total, start = int(cfg.train.steps), self.step
        n = total - start if stop_after is None else min(stop_after, total - start)
        self.clock += self.overhead
        stopped = "stop_after" if stop_after is not None and n == stop_after else None
        if deadline is not None and self.clock + n / self.true_rate > deadline:
            n = min(n, max(1, math.ceil((deadline - self.clock) * self.true_rate)))
            stopped = "deadline"
        self.clock += n / self.true_rate
        self.step = start + n
        self.calls.append(dict(schedule_end=total, start=start, end=self.step, deadline=deadline))
        rate = self.timed_rate if len(self.calls) == 1 else self.true_rate
        every = int(cfg.train.log_every)
        hist = [dict(step=s, steps_per_s=(1.0 if s - start <= every else rate))
                for s in range(start + every, self.step + 1, every)]
        return dict(history=hist, stopped_by=stopped, step=self.step, lead_in_seconds=0.0)


def _run_stage(monkeypatch, tmp_path, sim, budget, cap=100_000, resize_at=0.3):
    import mmada_jax.assets as assets
    import mmada_jax.training.loop as loop
    monkeypatch.setattr(loop, "train", sim.train)
    monkeypatch.setattr(assets, "batch_source", lambda *a, **k: None)
    monkeypatch.setattr(demo, "time", sim)  # the demo module's clock only
    cfg = ml_collections.ConfigDict(dict(train=dict(steps=cap, log_every=10)))
    t0 = sim.clock
    demo.train_stage("sft", cfg, str(tmp_path), budget, 40, (None, None), resize_at=resize_at)
    done = json.load(open(os.path.join(tmp_path, "DONE")))
    return done, sim.clock - t0


@pytest.mark.parametrize("timed_rate", [3.6, 4.0, 4.8])  # timing 10% low, right, 20% high
def test_stage_fills_its_budget_when_the_short_timing_is_off(monkeypatch, tmp_path, timed_rate):
    sim = SimulatedRun(true_rate=4.0, timed_rate=timed_rate, overhead=6.0)
    done, used = _run_stage(monkeypatch, tmp_path, sim, budget=540.0)
    assert 0.95 * 540 <= used <= 540 + 1 / 4.0  # the budget is used and kept
    assert len(sim.calls) == 3  # timing, up to the re-size point, the rest
    assert sim.calls[-1]["schedule_end"] == done["steps"] == done["planned_steps"]
    assert [c["start"] for c in sim.calls[1:]] == [c["end"] for c in sim.calls[:-1]]
    assert all(c["deadline"] == pytest.approx(1000.0 + 540.0) for c in sim.calls)
    if timed_rate < 4.0:  # sized short at first, then lengthened
        assert done["first_plan"] < done["steps"]


def test_without_resizing_a_low_timing_leaves_budget_unused(monkeypatch, tmp_path):
    sim = SimulatedRun(true_rate=4.0, timed_rate=3.6, overhead=6.0)
    done, used = _run_stage(monkeypatch, tmp_path, sim, budget=540.0, resize_at=0.0)
    assert len(sim.calls) == 2 and done["steps"] == done["first_plan"]
    assert used < 0.92 * 540  # what demo v25's SFT stage did (466 s of 540)


def test_a_high_timing_is_stopped_by_the_deadline(monkeypatch, tmp_path):
    sim = SimulatedRun(true_rate=4.0, timed_rate=6.0, overhead=6.0)
    done, used = _run_stage(monkeypatch, tmp_path, sim, budget=540.0, resize_at=0.0)
    assert used <= 540 + 1 / 4.0 and done["steps"] < done["planned_steps"]


def test_cap_reached_while_timing(monkeypatch, tmp_path):
    sim = SimulatedRun(true_rate=4.0, timed_rate=4.0, overhead=1.0)
    done, _ = _run_stage(monkeypatch, tmp_path, sim, budget=540.0, cap=30)
    assert len(sim.calls) == 1 and done["steps"] == 30


def test_resize_at_out_of_range_is_named(tmp_path):
    cfg = ml_collections.ConfigDict(dict(train=dict(steps=10, log_every=1)))
    with pytest.raises(ValueError, match="resize_at"):
        demo.train_stage("sft", cfg, str(tmp_path), 10.0, 4, (None, None), resize_at=1.0)
