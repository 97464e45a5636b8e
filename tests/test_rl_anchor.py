"""The fine-tuning anchor of UniGRPO (rl/anchor.py, `rl.anchor_coeff`): the update's loss is the
UniGRPO loss plus coeff x the train step's loss on anchor rows, and its gradient the sum."""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmada_jax.config import base_config
from mmada_jax.rl import anchor as anchor_lib
from mmada_jax.rl import trainer as tr
from mmada_jax.rl.config import GRPOConfig
from mmada_jax.rl.replay import PromptReplay
from mmada_jax.training.loop import make_batch_source
from mmada_jax.training.step import make_loss_fn

from test_grpo_step import _np_logprob, _np_loss, _rollouts
from test_grpo_step import _setup as _grpo_setup


def _setup():
    return _grpo_setup(batch_size=2, with_config=True)


def test_anchor_task_names_and_config_checks():
    c = base_config()
    c.tasks.t2i.batch_size, c.tasks.lm.batch_size, c.tasks.mmu.batch_size = 2, 3, 0
    rl = tr.rl_config()
    assert anchor_lib.anchor_task_names(rl, c) == ("lm",)
    rl.anchor_tasks = " lm , t2i"
    assert anchor_lib.anchor_task_names(rl, c) == ("lm", "t2i")
    for bad in ("mmu", "lm,nope", " , "):
        rl.anchor_tasks = bad
        with pytest.raises(ValueError, match="config.rl.anchor_tasks"):
            anchor_lib.anchor_task_names(rl, c)
    for bad in (-0.5, float("nan"), float("inf")):
        rl.anchor_coeff = bad
        with pytest.raises(ValueError, match="config.rl.anchor_coeff"):
            anchor_lib.anchor_coeff(rl)
    c.data.mixture = {"t2i": {"a": 1.0}, "lm": {"b": 1.0}}
    a = anchor_lib.anchor_config(c, ("lm",))
    assert a.tasks.lm.batch_size == 3 and a.tasks.t2i.batch_size == 0
    assert a.data.mixture.to_dict() == {"lm": {"b": 1.0}} and c.tasks.t2i.batch_size == 2


def test_grpo_step_with_anchor_adds_coeff_times_the_train_loss_and_its_gradient():
    c, setup, state = _setup()
    model, layout = setup.model, setup.layout
    g = GRPOConfig(group_size=2, num_iterations=1, clip_eps=0.2, beta=0.05, rewards={})
    rows, masks = _rollouts(layout)
    params0 = jax.device_get(state.params)
    lp = _np_logprob(model, params0, rows, masks, layout.mask)
    logp_old = (lp + np.array([0.3, -0.3, 0.05, -0.05])).astype(np.float32)
    adv = np.array([1, -1, -1, 1], np.float32)
    w = np.array([1, 1, 0, 0], np.float32)
    batch = dict(rows, masks=masks, logp_old=logp_old, logp_ref=lp.astype(np.float32),
                 advantages=adv, weights=w)
    acfg = anchor_lib.anchor_config(c, ("lm", "mmu"))
    anchor_batch = next(make_batch_source(acfg, layout))
    assert set(anchor_batch) == {"lm", "mmu"}
    coeff = 0.7
    anchor_loss = make_loss_fn(model, acfg, layout)
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    grpo_want, _ = _np_loss(lp, logp_old, lp, adv, w, g.clip_eps, g.beta)
    a_val, a_grads = jax.value_and_grad(lambda p: anchor_loss(p, anchor_batch, rng)[0])(params0)
    step0 = jax.jit(tr.make_grpo_step(model, optax.sgd(1.0), layout.mask, g, clip_norm=0.0))
    sgd_state = state.replace(opt_state=optax.sgd(1.0).init(state.params))
    plain, _ = step0(jax.tree_util.tree_map(jnp.copy, sgd_state), batch)

    step = jax.jit(tr.make_grpo_step(model, optax.sgd(1.0), layout.mask, g, clip_norm=0.0,
                                     anchor_loss=anchor_loss, anchor_coeff=coeff))
    new, m = step(sgd_state, batch, anchor_batch)
    np.testing.assert_allclose(float(m["anchor_loss"]), float(a_val), rtol=1e-5)
    np.testing.assert_allclose(float(m["loss"]), grpo_want + coeff * float(a_val), rtol=1e-4,
                               atol=1e-5)
    assert float(a_val) > 0.1  # the anchor term is not negligible in this check
    # SGD(1): anchored step's update = the plain step's update - coeff x the anchor gradient
    for p0, pa, pp, ga in zip(*(jax.tree_util.tree_leaves(t) for t in
                                (params0, new.params, plain.params, a_grads))):
        got = np.asarray(pa, np.float64) - np.asarray(pp, np.float64)
        want = -coeff * np.asarray(ga, np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-3,
                                   atol=1e-4 * float(np.abs(ga).max()) + 1e-7)
    with pytest.raises(ValueError, match="anchor_batch"):
        step(sgd_state, batch)


def _fake_trainer(setup, state, rb, g, anchor, acfg):
    rl = tr.rl_config()
    rl.group_size, rl.num_iterations, rl.update_quantum = 2, 2, 2
    fns = tr.GRPOFunctions(setup, g, acfg, 0.5 if anchor is not None else 0.0)
    fake = types.SimpleNamespace(
        rl=rl, g=g, state=state, ref_params=state.params,
        rollout=lambda params, step, items=None: rb, fns=fns, replay=PromptReplay({}),
        anchor=anchor, step_prompts=lambda step: ({}, {}), _update_replay=lambda *a: {})
    fake._summarize = functools.partial(tr.UniGRPO._summarize, fake)
    return fake


def test_anchor_alone_updates_when_every_group_is_filtered():
    """With an anchor, a step whose groups all lack signal still takes the anchor's update
    (on a quantum of weight-0 rows); without one it is skipped."""
    c, setup, state = _setup()
    rows, _ = _rollouts(setup.layout)
    region = np.zeros_like(rows["tokens"], bool)
    region[:, 6:] = True
    rb = tr.RolloutBatch(rows=rows, region=region, task=["reasoning"] * 4,
                         rewards=np.full(4, 2.5, np.float32), passed=np.ones(4, bool), parts={},
                         completions=[""] * 4, prompts=[""] * 4)
    g = GRPOConfig(group_size=2, num_iterations=2, beta=0.05, rewards={})
    acfg = anchor_lib.anchor_config(c, ("lm",))
    anchor = make_batch_source(acfg, setup.layout)
    before = jax.device_get(state.params)
    fake = _fake_trainer(setup, jax.tree_util.tree_map(jnp.copy, state), rb, g, anchor, acfg)
    out = tr.UniGRPO.train_step(fake, 0)
    assert int(fake.state.step) == 2 and out["anchor_loss"] > 0 and out["policy_loss"] == 0
    moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(
        jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(fake.state.params)))
    assert moved > 1e-3
    plain = _fake_trainer(setup, jax.tree_util.tree_map(jnp.copy, state), rb, g, None, None)
    out = tr.UniGRPO.train_step(plain, 0)
    assert int(plain.state.step) == 0 and "anchor_loss" not in out


def test_anchor_source_position_is_checkpoint_data():
    c, setup, _ = _setup()
    acfg = anchor_lib.anchor_config(c, ("lm",))
    a = make_batch_source(acfg, setup.layout)
    next(a)
    saved = a.get_state()
    want = next(a)
    b = make_batch_source(acfg, setup.layout)
    b.set_state(saved)
    got = next(b)
    np.testing.assert_array_equal(got["lm"]["tokens"], want["lm"]["tokens"])
    fake = types.SimpleNamespace(anchor=a)
    assert tr.UniGRPO.data_state(fake, 5)["anchor"] == a.get_state()
    assert tr.UniGRPO.data_state(types.SimpleNamespace(anchor=None), 5) == {"step": 5}
