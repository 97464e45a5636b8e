"""Progress lines (step, loss, steps/s, ETA) and TensorBoard scalars, from the main process."""

from __future__ import annotations

import sys
import time

import jax
import numpy as np


def _fmt_eta(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class MetricLogger:
    """`log(step, metrics)` prints a progress line and writes scalars to TensorBoard."""

    def __init__(self, workdir: str | None, total_steps: int, name: str = "train",
                 tensorboard: bool = True, stream=None, start_step: int = 0):
        self.total = total_steps
        self.name = name
        self.stream = stream or sys.stdout
        self.main = jax.process_index() == 0
        self.writer = None
        if tensorboard and workdir and self.main:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:  # progress lines and metrics.jsonl still work
                print(f"[{name}] tensorboardX is not installed: no TensorBoard scalars",
                      file=self.stream, flush=True)
            else:
                self.writer = SummaryWriter(logdir=f"{workdir}/tensorboard/{name}")
        self.t0 = time.perf_counter()
        self.last_t, self.last_step = self.t0, start_step
        self.history: list[dict] = []

    def rate(self, step: int) -> float:
        now = time.perf_counter()
        r = (step - self.last_step) / max(now - self.last_t, 1e-9)
        self.last_t, self.last_step = now, step
        return r

    def log(self, step: int, metrics: dict, extra: dict | None = None):
        scalars = {k: float(np.asarray(v)) for k, v in metrics.items() if np.ndim(v) == 0}
        if extra:
            scalars.update(extra)
        steps_per_s = scalars.get("steps_per_s", 0.0)
        eta = (self.total - step) / steps_per_s if steps_per_s > 0 else float("inf")
        self.history.append(dict(step=step, **scalars))
        if not self.main:
            return scalars
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, step)
            self.writer.flush()
        parts = [f"[{self.name}] step {step}/{self.total}"]
        if "loss" in scalars:
            parts.append(f"loss {scalars['loss']:.4f}")
        for k in sorted(scalars):
            if k.endswith("/loss"):
                parts.append(f"{k} {scalars[k]:.3f}")
        if steps_per_s:
            parts.append(f"{steps_per_s:.2f} steps/s")
        if "tokens_per_s" in scalars:
            parts.append(f"{scalars['tokens_per_s']:.0f} tok/s")
        if "mfu" in scalars:
            parts.append(f"MFU {100 * scalars['mfu']:.1f}%")
        parts.append(f"ETA {_fmt_eta(eta)}")
        print(" | ".join(parts), file=self.stream, flush=True)
        return scalars

    def log_text(self, tag: str, text: str, step: int):
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def close(self):
        if self.writer is not None:
            self.writer.close()
