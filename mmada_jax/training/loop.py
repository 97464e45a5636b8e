"""The training loop: mesh, model and optimizer, sharded state, resume, steps, logs, checkpoints.

`build(config)` gives every piece a stage needs (reused by the tokenizer trainer, UniGRPO and the
compile tool); `train(config, workdir)` runs the masked-diffusion pre-training / fine-tuning loop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from typing import Any

import jax
import numpy as np

from mmada_jax import config as config_lib
from mmada_jax.data import build_batch_source
from mmada_jax.training.lead_in import after_lead_in, lead_in_config, lead_in_dir
from mmada_jax.model import build_model
from mmada_jax.sharding import make_mesh
from mmada_jax.token_layout import TokenLayout
from mmada_jax.training.checkpoint import Checkpointer, restore_params
from mmada_jax.training.flops import peak_tflops_per_device, train_flops_per_token
from mmada_jax.training.logging import MetricLogger
from mmada_jax.training.optimizer import make_optimizer
from mmada_jax.training.step import (active_tasks, init_train_state, jit_train_step,
                                     state_shardings, with_params)


@dataclasses.dataclass
class Setup:
    config: Any
    mesh: Any
    layout: TokenLayout
    model: Any
    tx: Any
    lr_schedule: Any
    abstract_state: Any
    state_shardings: Any


def build(config, devices=None) -> Setup:
    """Validate the config and build mesh, token layout, model, optimizer and state shardings."""
    devices = jax.devices() if devices is None else devices
    config_lib.validate(config, len(devices))
    mesh = make_mesh(config.mesh, devices)
    layout = TokenLayout.from_config(config.tokens)
    model = build_model(config.model, layout)
    tx, sched = make_optimizer(config.optim, int(config.train.steps))
    abstract, shardings = state_shardings(model, tx, config, mesh)
    return Setup(config, mesh, layout, model, tx, sched, abstract, shardings)


def to_global(batch, shardings):
    """Host-local numpy batch -> global jax.Arrays laid out by `shardings`."""
    return jax.tree_util.tree_map(
        lambda x, s: jax.make_array_from_process_local_data(s, np.asarray(x)), batch, shardings)


def make_batch_source(cfg, layout, text_tok=None, image_tok=None):
    """The config's batch source with the run's text and image tokenizers (`mmada_jax.assets`,
    loaded from the config unless given); the synthetic source needs neither."""
    if cfg.data.source == "synthetic":
        return build_batch_source(cfg, layout, process_index=jax.process_index(),
                                  process_count=jax.process_count())
    from mmada_jax import assets  # lazy: the data stack stays out of model-only imports
    return assets.batch_source(cfg, layout, text_tok, image_tok)


class StopFlag:
    """Set by SIGTERM / SIGINT; the loop saves a checkpoint and exits at the next step."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handle(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def train(config, workdir: str, *, stop_after: int | None = None, batch_source=None,
          log_stream=None, devices=None, deadline: float | None = None) -> dict:
    """Run (or resume) training in `workdir`. Returns {'state', 'history', 'stopped_by',
    'setup', 'lead_in_seconds'}.

    `stop_after` ends the run after that many steps of this process (tests and time-boxed runs);
    a checkpoint is written whenever the loop exits early. `deadline` (a `time.perf_counter()`
    value) ends it likewise once that time has passed (a time budget's guard: the run's step
    count, and with it the schedule, was sized from a measured speed). A fresh run with
    `config.train.lead_in.steps` > 0 first trains its lead-in phase (`training/lead_in.py`) in
    WORKDIR/lead_in to the end (resuming it if interrupted) and starts from its parameters.
    """
    setup = build(config, devices)
    cfg = setup.config
    os.makedirs(workdir, exist_ok=True)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=cfg.train.keep_ckpts,
                        save_every=cfg.train.ckpt_every, async_save=cfg.train.async_ckpt)
    start = ckpt.latest_step()
    lead, t_lead = lead_in_config(cfg), time.perf_counter()
    if lead is not None:
        if start is None:  # a fresh run: its lead-in first (a resumed run has had it)
            print(f"lead-in phase: {int(lead.train.steps)} steps "
                  f"({cfg.train.lead_in.overrides or 'no overrides'}) in "
                  f"{lead_in_dir(workdir)}", flush=True)
            out = train(lead, lead_in_dir(workdir), log_stream=log_stream, devices=devices)
            if out["stopped_by"]:
                ckpt.close()
                return dict(out, history=[], lead_in_seconds=time.perf_counter() - t_lead)
        cfg = after_lead_in(cfg, workdir)
    t_lead = time.perf_counter() - t_lead
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(cfg.to_json_best_effort(indent=2))
    source = batch_source or make_batch_source(cfg, setup.layout)

    if start is not None:
        state, data_state = ckpt.restore(start, setup.abstract_state)
        if data_state is not None:
            source.set_state(data_state)
        print(f"resumed from {ckpt.directory} step {start}", flush=True)
    else:
        state = init_train_state(setup.model, setup.tx, cfg, setup.mesh,
                                 jax.random.key(cfg.train.seed), setup.state_shardings)
        if cfg.train.init_from:
            params, src_step = restore_params(cfg.train.init_from, setup.abstract_state)
            state = with_params(state, params)
            print(f"initialized parameters from {cfg.train.init_from} step {src_step}",
                  flush=True)
        start = 0

    first = next(source)
    step_fn = jit_train_step(setup.model, setup.tx, cfg, setup.layout, setup.mesh,
                             setup.state_shardings, first, setup.lr_schedule)
    total = int(cfg.train.steps)
    tokens_per_step = cfg.seq_len * sum(cfg.tasks[t].batch_size for t in active_tasks(cfg))
    flops_per_step = train_flops_per_token(setup.model.cfg, cfg.seq_len) * tokens_per_step
    peak = peak_tflops_per_device(cfg.train.peak_tflops_per_device)
    n_dev = setup.mesh.size
    logger = MetricLogger(workdir, total, "train", cfg.train.tensorboard, log_stream, start)
    metrics_path = os.path.join(workdir, "metrics.jsonl")

    stopped_by, step, batch = None, start, first
    with StopFlag() as stop:
        while step < total:
            gbatch = to_global(batch, step_fn.batch_shardings)
            state, metrics = step_fn(state, gbatch)
            step += 1
            if step % cfg.train.log_every == 0 or step == total:
                m = jax.device_get(metrics)
                rate = logger.rate(step)
                extra = dict(steps_per_s=rate, tokens_per_s=rate * tokens_per_step,
                             tflops_per_device=rate * flops_per_step / n_dev / 1e12)
                if peak:
                    extra["mfu"] = extra["tflops_per_device"] / peak
                for k, v in getattr(source, "stats", lambda: {})().items():
                    extra[f"data/{k}"] = float(v)
                scalars = logger.log(step, m, extra)
                if jax.process_index() == 0:
                    with open(metrics_path, "a") as f:
                        f.write(json.dumps(scalars | {"step": step}) + "\n")
                if m["nonfinite_in_row"] >= cfg.train.max_nonfinite_in_row:
                    ckpt.wait()
                    raise FloatingPointError(
                        f"{int(m['nonfinite_in_row'])} steps in a row had a non-finite loss or "
                        f"gradient (last at step {step}); updates were skipped. Lower "
                        "config.optim.lr or check the data. Last good checkpoint: "
                        f"{ckpt.latest_step()}")
            data_state = source.get_state()  # the next batch drawn is step + 1's
            early = stop_after is not None and step - start >= stop_after
            late = deadline is not None and step < total and time.perf_counter() >= deadline
            if stop.signal is not None or early or late:
                stopped_by = (f"signal {stop.signal}" if stop.signal is not None else
                              "stop_after" if early else "deadline")
                break
            ckpt.save(step, state, data_state)
            if step < total:
                batch = next(source)
    if step > start or stopped_by:
        ckpt.save_final(step, state, source.get_state())
    ckpt.close()
    logger.close()
    if hasattr(source, "close"):
        source.close()
    if stopped_by:
        print(f"stopped at step {step} ({stopped_by}); checkpoint saved", flush=True)
    return dict(state=state, history=logger.history, stopped_by=stopped_by, setup=setup,
                lead_in_seconds=t_lead, step=step)

