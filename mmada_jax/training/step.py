"""Train state, sharded initialization and the pure train step.

    state = init_train_state(model, tx, config, mesh, rng)          # born sharded
    step_fn = jit_train_step(model, tx, config, layout, mesh, state_shardings)
    state, metrics = step_fn(state, batch)                          # donates `state`

`batch` is a dict task -> rows (docs/CONTRACTS.md). Each task's objective corrupts its rows; the
corrupted rows of all tasks go through the model in one call; the total loss is
sum_task coeff * loss_task. Gradient accumulation runs `grad_accum` micro-batches under
`lax.scan`. A step whose loss or gradient is not finite leaves params and optimizer state
unchanged and is counted (`nonfinite_in_row`, `nonfinite_total`).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from jax.sharding import NamedSharding, PartitionSpec as P

from mmada_jax.objectives import get_objective, slice_scores, token_scores
from mmada_jax.sharding import LOGICAL_RULES, use_mesh
from mmada_jax.training.ema import check_ema_decay, ema_decay_at, update_ema


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key data (checkpoint-friendly)
    nonfinite_in_row: jax.Array
    nonfinite_total: jax.Array
    # the parameters' moving average (`training/ema.py`); None unless config.train.ema_decay > 0
    ema_params: Any = None


def active_tasks(config) -> list[str]:
    return [n for n, t in config.tasks.items() if t.batch_size > 0]


def dummy_tokens(config, batch: int = 1):
    return jnp.zeros((batch, config.seq_len), jnp.int32)


def _init_fn(model, tx, config):
    ema = check_ema_decay(config.train.get("ema_decay", 0.0)) > 0

    def init(rng):
        p_rng, s_rng = jax.random.split(rng)
        params = model.init(p_rng, dummy_tokens(config))["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=tx.init(params), rng=jax.random.key_data(s_rng),
                          nonfinite_in_row=jnp.zeros((), jnp.int32),
                          nonfinite_total=jnp.zeros((), jnp.int32),
                          ema_params=(jax.tree_util.tree_map(jnp.copy, params)
                                      if ema else None))
    return init


def with_params(state: TrainState, params) -> TrainState:
    """`state` starting from `params` (init_from, a policy's reference): the moving average,
    if kept, restarts there too."""
    if state.ema_params is None:
        return state.replace(params=params)
    return state.replace(params=params, ema_params=jax.tree_util.tree_map(jnp.copy, params))


def state_shardings(model, tx, config, mesh, rules=LOGICAL_RULES):
    """(abstract unboxed state, NamedSharding tree) from the parameters' logical axis names."""
    init = _init_fn(model, tx, config)
    boxed = jax.eval_shape(init, jax.random.key(0))
    logical = nn.get_partition_spec(boxed)
    shardings = nn.logical_to_mesh_sharding(logical, mesh, rules)
    abstract = nn.unbox(boxed)
    abstract = jax.tree_util.tree_map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    return abstract, shardings


def init_train_state(model, tx, config, mesh, rng, shardings=None):
    """Initialize parameters and optimizer state directly sharded (never whole on one device)."""
    if shardings is None:
        _, shardings = state_shardings(model, tx, config, mesh)
    init = _init_fn(model, tx, config)
    with use_mesh(mesh):
        return jax.jit(lambda r: nn.unbox(init(r)), out_shardings=shardings)(rng)


def _concat_rows(batch, tasks):
    """Concatenate task rows along the batch axis; fill absent key masks / segment ids."""
    toks = [batch[t]["inputs"] for t in tasks]
    out = {"tokens": jnp.concatenate(toks, axis=0)}
    if any("key_mask" in batch[t] for t in tasks):
        out["key_mask"] = jnp.concatenate(
            [batch[t].get("key_mask", jnp.ones_like(batch[t]["inputs"], bool)).astype(bool)
             for t in tasks], axis=0)
    if any("segment_ids" in batch[t] for t in tasks):
        out["segment_ids"] = jnp.concatenate(
            [batch[t].get("segment_ids", jnp.zeros_like(batch[t]["inputs"])) for t in tasks],
            axis=0)
    return out


def make_loss_fn(model, config, layout):
    """loss_fn(params, batch, rng) -> (total_loss, metrics) for one (micro-)batch."""
    tasks = active_tasks(config)
    objectives = {t: get_objective(config.tasks[t].objective, config.tasks[t], config.train)
                  for t in tasks}
    coeffs = {t: float(config.tasks[t].coeff) for t in tasks}

    def loss_fn(params, batch, rng):
        noised = {}
        for i, t in enumerate(tasks):
            noise = objectives[t].corrupt(jax.random.fold_in(rng, i), batch[t], layout.mask)
            noised[t] = dict(batch[t], inputs=noise["inputs"])
            noised[t]["_noise"] = noise
        rows = _concat_rows(noised, tasks)
        logits = model.apply({"params": params}, rows["tokens"], key_mask=rows.get("key_mask"),
                             segment_ids=rows.get("segment_ids"))
        targets = jnp.concatenate([batch[t]["tokens"] for t in tasks], axis=0)
        scores = token_scores(logits, targets)  # one pass over the logits for every task
        total, metrics, start = 0.0, {}, 0
        for t in tasks:
            b = batch[t]["tokens"].shape[0]
            lt, mt = objectives[t].loss(slice_scores(scores, start, b), batch[t],
                                        noised[t]["_noise"])
            start += b
            total = total + coeffs[t] * lt
            metrics[f"{t}/loss"] = lt
            for k, v in mt.items():
                metrics[f"{t}/{k}"] = v
        metrics["loss"] = total
        return total, metrics

    return loss_fn


def _split_micro(batch, n: int):
    return jax.tree_util.tree_map(lambda x: x.reshape((n, x.shape[0] // n) + x.shape[1:]), batch)


def apply_gradients(state: TrainState, grads, loss, tx, clip_norm: float = 0.0,
                    skip_nonfinite: bool = True, ema_decay: float = 0.0):
    """One optimizer update with global-norm clipping and the non-finite guard.

    Returns (new_state, metrics) with grad_norm, update_skipped and nonfinite_in_row. A
    non-finite loss or gradient norm leaves params, optimizer state and the parameters' moving
    average unchanged (lax.cond: the skip branch costs nothing, unlike a where() over every
    leaf) and is counted. `ema_decay` > 0 updates `state.ema_params` (`training/ema.py`)."""
    gnorm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(gnorm)

    def apply(_):
        g = grads
        if clip_norm:  # clip with the norm already computed; fuses into the update
            factor = jnp.minimum(1.0, clip_norm / jnp.maximum(gnorm, 1e-12))
            g = jax.tree_util.tree_map(lambda x: x * factor.astype(x.dtype), g)
        updates, new_opt = tx.update(g, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        new_ema = state.ema_params
        if new_ema is not None and ema_decay > 0:
            new_ema = update_ema(new_ema, new_params, ema_decay_at(state.step, ema_decay))
        return new_params, new_opt, new_ema

    if skip_nonfinite:
        new_params, new_opt, new_ema = jax.lax.cond(
            finite, apply, lambda _: (state.params, state.opt_state, state.ema_params), None)
    else:
        new_params, new_opt, new_ema = apply(None)
    new_state = state.replace(
        step=state.step + 1, params=new_params, opt_state=new_opt, ema_params=new_ema,
        nonfinite_in_row=jnp.where(finite, 0, state.nonfinite_in_row + 1),
        nonfinite_total=state.nonfinite_total + (~finite).astype(jnp.int32))
    return new_state, dict(grad_norm=gnorm, update_skipped=(~finite).astype(jnp.int32),
                           nonfinite_in_row=new_state.nonfinite_in_row)


def make_train_step(model, tx, config, layout, lr_schedule=None):
    """Pure `train_step(state, batch) -> (state, metrics)`."""
    loss_fn = make_loss_fn(model, config, layout)
    accum = int(config.train.grad_accum)
    clip_norm = float(config.optim.clip_norm or 0.0)
    skip_nonfinite = bool(config.train.get("skip_nonfinite", True))
    ema_decay = check_ema_decay(config.train.get("ema_decay", 0.0))
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(state: TrainState, batch):
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        if accum == 1:
            (_, metrics), grads = grad_fn(state.params, batch, rng)
        else:
            micro = _split_micro(batch, accum)

            def body(carry, xs):
                g_acc, i = carry
                (_, m), g = grad_fn(state.params, xs, jax.random.fold_in(rng, i))
                return (jax.tree_util.tree_map(jnp.add, g_acc, g), i + 1), m

            zeros = jax.tree_util.tree_map(jnp.zeros_like, state.params)
            (grads, _), ms = jax.lax.scan(body, (zeros, jnp.zeros((), jnp.int32)), micro)
            grads = jax.tree_util.tree_map(lambda g: g / accum, grads)
            metrics = jax.tree_util.tree_map(
                lambda x: x.mean(0) if jnp.issubdtype(x.dtype, jnp.floating) else x.sum(0), ms)
        new_state, upd_metrics = apply_gradients(state, grads, metrics["loss"], tx, clip_norm,
                                                 skip_nonfinite, ema_decay)
        metrics = dict(metrics, **upd_metrics)
        if lr_schedule is not None:
            metrics["lr"] = lr_schedule(state.step)
        return new_state, metrics

    return train_step


def batch_shardings(batch_like, mesh):
    """Rows of every array sharded over (data, fsdp)."""
    return jax.tree_util.tree_map(
        lambda x: NamedSharding(mesh, P(("data", "fsdp"), *([None] * (x.ndim - 1)))), batch_like)


def jit_train_step(model, tx, config, layout, mesh, shardings, batch_like, lr_schedule=None):
    """The train step jitted with in/out shardings and state donation."""
    step = make_train_step(model, tx, config, layout, lr_schedule)
    b_sh = batch_shardings(batch_like, mesh)
    jitted = jax.jit(step, in_shardings=(shardings, b_sh),
                     out_shardings=(shardings, NamedSharding(mesh, P())), donate_argnums=(0,))

    def run(state, batch):
        with use_mesh(mesh):
            return jitted(state, batch)

    run.jitted = jitted
    run.batch_shardings = b_sh
    return run
