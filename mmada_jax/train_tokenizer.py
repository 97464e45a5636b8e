"""Train a MAGVIT-v2 (LFQ) image tokenizer.

    python -m mmada_jax.train_tokenizer --config experiments/tokenizer_shapesworld.py \
        --workdir runs/tok [--config.train.steps=100] [--stop_after=N]

Same machinery as the main trainer: mesh from `config.mesh` (batch over data x fsdp, parameters
replicated), Orbax checkpoints with the data iterator's state (automatic resume; SIGTERM/SIGINT
save and exit), progress lines, TensorBoard scalars and `metrics.jsonl`. Every
`train.eval_every` steps (and at the end) it evaluates a fixed held-out set (PSNR, and how often
the ShapesWorld scene parser reads the same scene from the reconstruction as from the original)
and writes `recon/step_{N:06d}.png` (originals above reconstructions).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax.sharding import NamedSharding, PartitionSpec as P
from ml_collections import ConfigDict, config_flags

from mmada_jax.config import mesh_shape
from mmada_jax.sharding import make_mesh, use_mesh
from mmada_jax.tokenizers.magvit import MAGVITv2, MagvitConfig, init_params
from mmada_jax.tokenizers.training import (LOSS_DEFAULTS, check_loss_config, image_grid,
                                           make_tokenizer_train_step)


def base_tokenizer_config() -> ConfigDict:
    """Every field the tokenizer trainer reads, with defaults."""
    c = ConfigDict()
    c.name = "tokenizer"
    c.magvit = ConfigDict(MagvitConfig().to_dict())
    c.loss = ConfigDict(dict(LOSS_DEFAULTS))
    c.mesh = ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    c.batch_size = 16
    c.optim = ConfigDict(dict(
        name="adamw", lr=1e-3, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.0, clip_norm=1.0,
        schedule="warmup_cosine", warmup_steps=50, min_lr_scale=0.1, decay_steps=0))
    c.train = ConfigDict(dict(
        steps=1000, seed=0, log_every=10, ckpt_every=200, keep_ckpts=2, async_ckpt=True,
        max_nonfinite_in_row=5, tensorboard=True, eval_every=0, eval_parser=False, eval_images=64,
        grid_images=8))
    c.data = ConfigDict(dict(source="shapesworld", image_size=64, seed=0, split="train",
                             eval_seed=12345, eval_split="test", max_objects=4))
    return c


def validate(cfg, num_devices: int) -> None:
    """Raise ValueError naming the bad field."""
    known = set(base_tokenizer_config().keys())
    if set(cfg.keys()) - known:
        raise ValueError(f"config: unknown top-level keys {sorted(set(cfg.keys()) - known)}; "
                         f"known: {sorted(known)}")
    mcfg = MagvitConfig.from_dict(cfg.magvit.to_dict())
    mcfg.latent_hw(cfg.data.image_size, cfg.data.image_size)
    check_loss_config({**LOSS_DEFAULTS, **cfg.loss.to_dict()})
    sizes = mesh_shape(cfg.mesh, num_devices)
    if sizes["tensor"] != 1:
        raise ValueError("config.mesh.tensor must be 1 for the tokenizer (data parallel only)")
    dp = sizes["data"] * sizes["fsdp"]
    if cfg.batch_size % dp:
        raise ValueError(f"config.batch_size={cfg.batch_size} is not divisible by the "
                         f"data-parallel size data*fsdp={dp}")
    if cfg.data.source != "shapesworld":
        raise ValueError(f"config.data.source={cfg.data.source!r}: only 'shapesworld' is known")


def build(cfg, devices=None):
    """(mesh, model, optimizer, lr schedule, replicated state sharding)."""
    from mmada_jax.training.optimizer import make_optimizer
    devices = jax.devices() if devices is None else devices
    validate(cfg, len(devices))
    mesh = make_mesh(cfg.mesh, devices)
    model = MAGVITv2(MagvitConfig.from_dict(cfg.magvit.to_dict()))
    tx, sched = make_optimizer(cfg.optim, int(cfg.train.steps))
    return mesh, model, tx, sched, NamedSharding(mesh, P())


def init_state(model, tx, cfg, replicated):
    from mmada_jax.training.step import TrainState
    params = jax.device_put(init_params(model.cfg, int(cfg.train.seed)), replicated)
    def zero():  # distinct buffers: the state is donated
        return jax.device_put(np.zeros((), np.int32), replicated)

    return TrainState(
        step=zero(), params=params, opt_state=jax.jit(tx.init, out_shardings=replicated)(params),
        rng=jax.device_put(jax.random.key_data(jax.random.key(cfg.train.seed)), replicated),
        nonfinite_in_row=zero(), nonfinite_total=zero())


def reconstruct_fn(model):
    """jitted params, images -> (codes, reconstructions clipped to [-1, 1])."""
    def run(params, images):
        codes = model.apply({"params": params}, images, method=MAGVITv2.encode)
        return codes, model.apply({"params": params}, codes, method=MAGVITv2.decode)
    return jax.jit(run)


def evaluate(recon, params, images: np.ndarray, scenes=None, batch: int = 16):
    """Returns (metrics, reconstructions float32 [N, S, S, 3]). Metrics: PSNR (dB, mean over images) and, given the scenes, the fraction of reconstructions whose
    parsed scene equals the original image's parsed scene (`parse_agreement`) and the truth
    (`parse_correct_recon` / `parse_correct_orig`)."""
    outs = []
    for i in range(0, len(images), batch):
        outs.append(np.asarray(recon(params, jnp.asarray(images[i:i + batch]))[1]))
    rec = np.concatenate(outs)
    mse = np.mean((rec.astype(np.float64) - images) ** 2, axis=(1, 2, 3))
    res = dict(psnr=float(np.mean(10 * np.log10(4.0 / np.maximum(mse, 1e-12)))),
               psnr_min=float(np.min(10 * np.log10(4.0 / np.maximum(mse, 1e-12)))))
    if scenes is not None:
        from mmada_jax.data.shapesworld.parser import parse_scene, scene_correct
        po = [parse_scene(x) for x in images]
        pr = [parse_scene(x) for x in rec]
        res["parse_agreement"] = float(np.mean([scene_correct(a, b) for a, b in zip(pr, po)]))
        res["parse_correct_recon"] = float(np.mean([scene_correct(a, s)
                                                    for a, s in zip(pr, scenes)]))
        res["parse_correct_orig"] = float(np.mean([scene_correct(a, s)
                                                   for a, s in zip(po, scenes)]))
    return res, rec


def _write_png(path: str, grid: np.ndarray) -> None:
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(grid).save(path)


def train_tokenizer(cfg, workdir: str, *, stop_after: int | None = None, log_stream=None,
                    devices=None) -> dict:
    """Run (or resume) tokenizer training in `workdir`. Returns {'state', 'history', 'eval'}."""
    from mmada_jax.tokenizers.shapes_data import ShapesWorldImages, heldout_set
    from mmada_jax.training.checkpoint import Checkpointer
    from mmada_jax.training.logging import MetricLogger
    from mmada_jax.training.loop import StopFlag, to_global
    from mmada_jax.training.step import batch_shardings

    mesh, model, tx, sched, replicated = build(cfg, devices)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(cfg.to_json_best_effort(indent=2))
    t = cfg.train
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=t.keep_ckpts,
                        save_every=t.ckpt_every, async_save=t.async_ckpt)
    source = ShapesWorldImages(cfg.batch_size, cfg.data.image_size, cfg.data.seed,
                               cfg.data.split, jax.process_index(), jax.process_count(),
                               int(cfg.data.get("max_objects", 4)))
    state = init_state(model, tx, cfg, replicated)
    start = ckpt.latest_step()
    if start is not None:
        abstract = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), state)
        state, data_state = ckpt.restore(start, abstract)
        if data_state is not None:
            source.set_state(data_state)
        print(f"resumed from {ckpt.directory} step {start}", flush=True)
    else:
        start = 0

    step_fn = make_tokenizer_train_step(model, tx, cfg.loss.to_dict(), sched)
    first = next(source)
    b_sh = batch_shardings(first, mesh)
    jitted = jax.jit(step_fn, in_shardings=(replicated, b_sh),
                     out_shardings=(replicated, replicated), donate_argnums=(0,))
    recon = reconstruct_fn(model)
    ev_images, ev_scenes = heldout_set(t.eval_images, cfg.data.image_size, cfg.data.eval_seed,
                                       cfg.data.eval_split, int(cfg.data.get("max_objects", 4)))
    logger = MetricLogger(workdir, int(t.steps), "tokenizer", t.tensorboard, log_stream, start)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    main = jax.process_index() == 0
    pixels = cfg.batch_size * cfg.data.image_size ** 2

    def run_eval(step, with_parser):
        res, rec = evaluate(recon, state.params, ev_images, ev_scenes if with_parser else None)
        n = min(t.grid_images, len(ev_images))
        if main:
            _write_png(os.path.join(workdir, "recon", f"step_{step:06d}.png"),
                       image_grid([ev_images[:n], rec[:n]]))
        scalars = {f"eval/{k}": v for k, v in res.items()}
        logger.history.append(dict(step=step, **scalars))
        if main:
            if logger.writer is not None:
                for k, v in scalars.items():
                    logger.writer.add_scalar(k, v, step)
                logger.writer.flush()
            print(f"[tokenizer] eval step {step}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in res.items()), flush=True)
            with open(metrics_path, "a") as f:
                f.write(json.dumps({f"eval/{k}": v for k, v in res.items()} | {"step": step})
                        + "\n")
        return res

    stopped_by, step, batch, result = None, start, first, {}
    with StopFlag() as stop:
        while step < t.steps:
            with use_mesh(mesh):
                state, metrics = jitted(state, to_global(batch, b_sh))
            step += 1
            if step % t.log_every == 0 or step == t.steps:
                m = jax.device_get(metrics)
                rate = logger.rate(step)
                scalars = logger.log(step, m, dict(steps_per_s=rate,
                                                   pixels_per_s=rate * pixels))
                if main:
                    with open(metrics_path, "a") as f:
                        f.write(json.dumps(scalars | {"step": step}) + "\n")
                if m["nonfinite_in_row"] >= t.max_nonfinite_in_row:
                    ckpt.wait()
                    raise FloatingPointError(
                        f"{int(m['nonfinite_in_row'])} steps in a row had a non-finite loss or "
                        f"gradient (last at step {step}); lower config.optim.lr. Last good "
                        f"checkpoint: {ckpt.latest_step()}")
            if t.eval_every and step % t.eval_every == 0 and step < t.steps:
                run_eval(step, with_parser=bool(t.get("eval_parser", False)))
            early = stop_after is not None and step - start >= stop_after
            if stop.signal is not None or early:
                stopped_by = f"signal {stop.signal}" if stop.signal is not None else "stop_after"
                break
            ckpt.save(step, state, source.get_state())
            if step < t.steps:
                batch = next(source)
    if step > start or stopped_by:
        ckpt.save_final(step, state, source.get_state())
    if not stopped_by:
        result = run_eval(step, with_parser=True)
        print("final eval: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()), flush=True)
    ckpt.close()
    logger.close()
    return dict(state=state, history=logger.history, eval=result, stopped_by=stopped_by,
                model=model)


# ------------------------------------------------------------------------------------ CLI
def main(argv):
    del argv
    from absl import logging
    f = flags.FLAGS
    if f["verbosity"].present == 0:  # keep the console to progress lines (as mmada_jax.train)
        logging.set_verbosity(logging.WARNING)
    if f.config is None or f.workdir is None:
        raise app.UsageError("--config and --workdir are required")
    train_tokenizer(f.config, f.workdir, stop_after=f.stop_after)


def _define_flags():
    """Flags exist only when run as a program (importing this module defines none)."""
    config_flags.DEFINE_config_file("config", None, "Tokenizer experiment config file.",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and PNGs.")
    flags.DEFINE_integer("stop_after", None,
                         "Stop (with a checkpoint) after this many steps of this run.")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
