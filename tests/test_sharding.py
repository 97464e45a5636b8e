"""8 fake CPU devices on a 2x2x2 (data, fsdp, tensor) mesh train exactly like one device."""

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from mmada_jax.config import base_config
from mmada_jax.data import build_batch_source
from mmada_jax.training.loop import build, to_global
from mmada_jax.training.step import init_train_state, jit_train_step


def _config(mesh):
    c = base_config()
    c.model.dtype = "float32"
    c.seq_len = 40
    c.data.max_text_len = 10
    for t in c.tasks.values():
        t.batch_size = 4
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = mesh
    c.optim.warmup_steps = 2
    c.optim.lr = 3e-3
    c.train.steps = 5
    return c


def _run(config, devices, steps=5):
    s = build(config, devices)
    state = init_train_state(s.model, s.tx, config, s.mesh, jax.random.key(0), s.state_shardings)
    source = build_batch_source(config, s.layout)
    first = next(source)
    step = jit_train_step(s.model, s.tx, config, s.layout, s.mesh, s.state_shardings, first,
                          s.lr_schedule)
    losses, batch = [], first
    for i in range(steps):
        state, m = step(state, to_global(batch, step.batch_shardings))
        losses.append(float(m["loss"]))
        batch = next(source)
    return state, losses


def test_2x2x2_mesh_matches_single_device():
    assert len(jax.devices()) == 8
    s8, l8 = _run(_config((2, 2, 2)), jax.devices())
    s1, l1 = _run(_config((1, 1, 1)), jax.devices()[:1])
    np.testing.assert_allclose(l8, l1, rtol=1e-5)
    flat8 = jax.tree_util.tree_leaves(s8.params)
    flat1 = jax.tree_util.tree_leaves(s1.params)
    for a, b in zip(flat8, flat1):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5
    # parameters and optimizer state are really sharded
    q = s8.params["blocks"]["q_proj"]["kernel"]
    assert q.sharding.spec == P(None, "fsdp", "tensor")
    assert len(q.addressable_shards) == 8 and q.addressable_shards[0].data.shape == (2, 32, 32)
    emb = s8.params["wte"]["embedding"]
    assert emb.sharding.spec == P("tensor", "fsdp")
    mu = s8.opt_state[0][0].mu["blocks"]["ff_proj"]["kernel"]
    assert mu.sharding.spec == P(None, "fsdp", "tensor")


def test_grad_accumulation_averages_micro_batch_gradients():
    """accum=2: one update with the mean of the two micro-batches' gradients (each micro-batch
    corrupted with rng fold_in(step_rng, i)), checked against a hand-rolled computation."""
    import optax
    from mmada_jax.training.step import make_loss_fn
    c = _config((1, 1, 1))
    c.train.grad_accum = 2
    s = build(c, jax.devices()[:1])
    state = init_train_state(s.model, s.tx, c, s.mesh, jax.random.key(0), s.state_shardings)
    batch = next(build_batch_source(c, s.layout))
    loss_fn = make_loss_fn(s.model, c, s.layout)
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), 0)
    grads = []
    for i in range(2):
        half = jax.tree_util.tree_map(lambda x: x[i * 2:(i + 1) * 2], batch)
        grads.append(jax.grad(lambda p: loss_fn(p, half, jax.random.fold_in(rng, i))[0])(
            state.params))
    g = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, *grads)
    norm = optax.tree.norm(g)
    g = jax.tree_util.tree_map(lambda x: x * min(1.0, c.optim.clip_norm / float(norm)), g)
    upd, _ = s.tx.update(g, state.opt_state, state.params)
    expect = optax.apply_updates(state.params, upd)
    step = jit_train_step(s.model, s.tx, c, s.layout, s.mesh, s.state_shardings, batch)
    new, _ = step(state, to_global(batch, step.batch_shardings))
    for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(expect)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-6


def test_nonfinite_step_is_skipped_and_counted():
    import jax.numpy as jnp
    c = _config((1, 1, 1))
    s = build(c, jax.devices()[:1])
    state = init_train_state(s.model, s.tx, c, s.mesh, jax.random.key(0), s.state_shardings)
    batch = next(build_batch_source(c, s.layout))
    step = jit_train_step(s.model, s.tx, c, s.layout, s.mesh, s.state_shardings, batch)
    before = jax.tree_util.tree_map(np.asarray, state.params)
    poisoned = state.replace(params=dict(state.params, ln_f={"scale": jnp.full_like(
        state.params["ln_f"]["scale"], jnp.nan)}))
    new, m = step(poisoned, to_global(batch, step.batch_shardings))
    assert int(m["update_skipped"]) == 1 and int(new.nonfinite_in_row) == 1
    assert int(new.nonfinite_total) == 1 and int(new.step) == 1
    np.testing.assert_array_equal(np.asarray(new.params["wte"]["embedding"]),
                                  before["wte"]["embedding"])
