"""The parameters' moving average (`training/ema.py`): the update against a float64 NumPy
reference, in the train step and the loop, through checkpoints, init_from, and bad settings."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmada_jax.config import apply_overrides, load_config_file
from mmada_jax.training.checkpoint import CheckpointMismatchError, restore_params
from mmada_jax.training.ema import check_ema_decay, ema_decay_at, update_ema
from mmada_jax.training.loop import train
from mmada_jax.training.step import TrainState, apply_gradients

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "pretrain_tiny.py")


def _cfg(**over):
    base = {"train.log_every": 1, "train.ckpt_every": 1, "train.keep_ckpts": 10,
            "train.tensorboard": False, "train.async_ckpt": False}
    return apply_overrides(load_config_file(CFG), base | over)


def _leaves(tree):
    return [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(tree)]


def _ref_decay(t, d):
    return min(d, (1.0 + t) / (10.0 + t))


def test_decay_schedule_and_update_match_numpy():
    for t in (0, 1, 7, 90, 5000):
        for d in (0.5, 0.99, 0.9999):
            np.testing.assert_allclose(float(ema_decay_at(t, d)), _ref_decay(t, d), rtol=1e-6)
    rng = np.random.default_rng(0)
    shapes = [(3, 5), (7,), (2, 3, 11)]
    ema = {f"w{i}": rng.normal(size=s) for i, s in enumerate(shapes)}
    new = {f"w{i}": rng.normal(size=s) for i, s in enumerate(shapes)}
    for dtype, tol in ((jnp.float32, 1e-6), (jnp.bfloat16, 1e-2)):
        out = update_ema(jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), ema),
                         jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), new),
                         jnp.float32(0.93))
        for k in ema:
            assert out[k].dtype == dtype
            e = np.asarray(jnp.asarray(ema[k], dtype), np.float64)
            p = np.asarray(jnp.asarray(new[k], dtype), np.float64)
            np.testing.assert_allclose(np.asarray(out[k], np.float64), 0.93 * e + 0.07 * p,
                                       rtol=tol, atol=tol)


def test_bad_decay_is_named():
    assert check_ema_decay(0) == 0.0 and check_ema_decay(0.999) == 0.999
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="train.ema_decay"):
            check_ema_decay(bad)


def test_nonfinite_step_leaves_the_average_alone():
    params = {"w": jnp.ones((4,)), "b": jnp.zeros((2,))}
    tx = optax.sgd(0.5)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                       rng=jnp.zeros((2,), jnp.uint32), nonfinite_in_row=jnp.zeros((), jnp.int32),
                       nonfinite_total=jnp.zeros((), jnp.int32),
                       ema_params=jax.tree_util.tree_map(jnp.copy, params))
    grads = {"w": jnp.full((4,), 2.0), "b": jnp.ones((2,))}
    s1, _ = apply_gradients(state, grads, jnp.float32(1.0), tx, ema_decay=0.9)
    d0 = _ref_decay(0, 0.9)  # 0.1: the capped decay of the first step
    np.testing.assert_allclose(s1.params["w"], 0.0)
    np.testing.assert_allclose(s1.ema_params["w"], d0 * 1.0 + (1 - d0) * 0.0, rtol=1e-6)
    s2, m = apply_gradients(s1, grads, jnp.float32(np.nan), tx, ema_decay=0.9)
    assert int(m["update_skipped"]) == 1
    for a, b in zip(_leaves(s2.ema_params), _leaves(s1.ema_params)):
        np.testing.assert_array_equal(a, b)
    # a state without an average stays without one
    s3, _ = apply_gradients(state.replace(ema_params=None), grads, jnp.float32(1.0), tx,
                            ema_decay=0.9)
    assert s3.ema_params is None


def test_loop_average_matches_reference_through_checkpoints(tmp_path):
    devices = jax.devices()[:1]
    decay, steps = 0.6, 4
    init = train(_cfg(**{"train.steps": 0}), str(tmp_path / "init"), devices=devices)
    out = train(_cfg(**{"train.steps": steps, "train.ema_decay": decay}),
                str(tmp_path / "run"), devices=devices)
    abstract = out["setup"].abstract_state
    ema_ref = _leaves(init["state"].params)
    for k in range(1, steps + 1):
        p_k, s = restore_params(str(tmp_path / "run"), abstract, step=k, weights="params")
        assert s == k
        d = _ref_decay(k - 1, decay)
        ema_ref = [d * e + (1 - d) * p for e, p in zip(ema_ref, _leaves(p_k))]
        e_k, _ = restore_params(str(tmp_path / "run"), abstract, step=k, weights="ema")
        for a, b in zip(_leaves(e_k), ema_ref):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the average is not the last step's parameters, and 'auto' reads the average
    last, _ = restore_params(str(tmp_path / "run"), abstract, weights="params")
    auto, _ = restore_params(str(tmp_path / "run"), abstract)
    assert max(np.abs(a - b).max() for a, b in zip(_leaves(last), ema_ref)) > 1e-5
    for a, b in zip(_leaves(auto), ema_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(_leaves(out["state"].ema_params), ema_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_without_average_checkpoints_are_unchanged_and_ema_is_refused(tmp_path):
    devices = jax.devices()[:1]
    out = train(_cfg(**{"train.steps": 1}), str(tmp_path / "run"), devices=devices)
    assert out["state"].ema_params is None
    abstract = out["setup"].abstract_state
    auto, _ = restore_params(str(tmp_path / "run"), abstract)
    for a, b in zip(_leaves(auto), _leaves(out["state"].params)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointMismatchError, match="no moving average.*ema_decay"):
        restore_params(str(tmp_path / "run"), abstract, weights="ema")
    with pytest.raises(ValueError, match="weights='best'"):
        restore_params(str(tmp_path / "run"), abstract, weights="best")
    # resuming this run with an average asked for names what the checkpoint lacks
    with pytest.raises(CheckpointMismatchError, match="missing in checkpoint.*ema_params"):
        train(_cfg(**{"train.steps": 2, "train.ema_decay": 0.9}), str(tmp_path / "run"),
              devices=devices)


def test_init_from_restarts_the_average_at_the_loaded_parameters(tmp_path):
    devices = jax.devices()[:1]
    src = train(_cfg(**{"train.steps": 2, "train.ema_decay": 0.9}), str(tmp_path / "src"),
                devices=devices)
    # a fresh run from it: 0 steps, so its state is where it starts
    out = train(_cfg(**{"train.steps": 0, "train.ema_decay": 0.9,
                        "train.init_from": str(tmp_path / "src")}),
                str(tmp_path / "run"), devices=devices)
    src_ema = _leaves(src["state"].ema_params)  # init_from reads the source's average
    for a, b, c in zip(_leaves(out["state"].params), _leaves(out["state"].ema_params), src_ema):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


def test_average_is_sharded_like_the_parameters():
    from mmada_jax.training.loop import build
    mesh = {"mesh.data": 1, "mesh.fsdp": 2, "mesh.tensor": 4}
    setup = build(_cfg(**mesh, **{"train.ema_decay": 0.99}), jax.devices()[:8])
    p_sh = jax.tree_util.tree_leaves(setup.state_shardings.params)
    e_sh = jax.tree_util.tree_leaves(setup.state_shardings.ema_params)
    assert len(p_sh) == len(e_sh) > 0
    assert [s.spec for s in p_sh] == [s.spec for s in e_sh]
    assert any(any(ax is not None for ax in s.spec) for s in e_sh)  # sharded, not replicated
    off = build(_cfg(**mesh), jax.devices()[:8])
    assert off.state_shardings.ema_params is None


def test_restore_weights_says_which_and_the_report_line(tmp_path):
    import json
    from mmada_jax.pipeline_report import weights_lines
    from mmada_jax.training.checkpoint import restore_weights
    devices = jax.devices()[:1]
    out = train(_cfg(**{"train.steps": 1, "train.ema_decay": 0.5}), str(tmp_path / "ema"),
                devices=devices)
    abstract = out["setup"].abstract_state
    assert restore_weights(str(tmp_path / "ema"), abstract)[1:] == (1, "ema")
    assert restore_weights(str(tmp_path / "ema"), abstract, weights="params")[1:] == (1, "params")
    # the demo report names the scored weights when a stage kept an average, else says nothing
    for stage, w in (("pretrain", "params"), ("sft", "ema")):
        os.makedirs(tmp_path / "run" / stage / "eval")
        json.dump({"meta": {"weights": w, "step": 7}},
                  open(tmp_path / "run" / stage / "eval" / "report.json", "w"))
    line = weights_lines(str(tmp_path / "run"), ["pretrain", "sft", "grpo"])[0]
    assert "pretrain step 7, last step's parameters; sft step 7, moving average" in line
    assert weights_lines(str(tmp_path / "run"), ["pretrain"]) == []
