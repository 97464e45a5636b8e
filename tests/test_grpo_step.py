"""The assembled UniGRPO update (rl/trainer.py) on a tiny MMaDA model, against a NumPy
re-computation on fixed rollouts and masks; group filtering in the trainer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmada_jax.config import base_config
from mmada_jax.rl import masking
from mmada_jax.rl import trainer as tr
from mmada_jax.rl.config import GRPOConfig
from mmada_jax.sampling.logits import mask_positions
from mmada_jax.training.loop import build
from mmada_jax.training.step import init_train_state

B, L, M = 4, 12, 2


def _setup(batch_size: int = 1, with_config: bool = False):
    """(setup, state) of a tiny float32 model (with_config: (config, setup, state))."""
    c = base_config()
    c.model.dtype = "float32"
    c.seq_len = L
    c.optim.lr = 1e-2
    c.optim.warmup_steps = 0
    c.train.steps = 10
    for t in c.tasks.values():
        t.batch_size = batch_size
    setup = build(c, jax.devices()[:1])
    state = init_train_state(setup.model, setup.tx, c, setup.mesh, jax.random.key(0),
                             setup.state_shardings)
    return (c, setup, state) if with_config else (setup, state)


def _rollouts(layout):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, size=(B, L)).astype(np.int32)
    key_mask = np.ones((B, L), bool)
    key_mask[1, :2] = False  # a left-padded prompt
    region = np.zeros((B, L), bool)
    region[:, 6:] = True
    positions = np.asarray(mask_positions(jnp.asarray(key_mask)))
    masks, _ = masking.unigrpo_masks(jax.random.key(3), jnp.asarray(region), M, 0.1, 0.9, 2)
    masks = np.asarray(masks).transpose(1, 0, 2)  # [B, m, L]
    return dict(tokens=tokens, key_mask=key_mask, positions=positions), masks


def _np_logprob(model, params, rows, masks, mask_id):
    """Plain forward per mask, NumPy log-softmax and masked mean, averaged over masks."""
    out = np.zeros((B,))
    for j in range(masks.shape[1]):
        mk = masks[:, j]
        noisy = np.where(mk, mask_id, rows["tokens"])
        logits = np.asarray(model.apply({"params": params}, jnp.asarray(noisy),
                                        key_mask=jnp.asarray(rows["key_mask"]),
                                        positions=jnp.asarray(rows["positions"])), np.float64)
        lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        lp = np.take_along_axis(logits, rows["tokens"][..., None], -1)[..., 0] - lse
        out += (lp * mk).sum(-1) / np.maximum(mk.sum(-1), 1)
    return out / masks.shape[1]


def _np_loss(lp_new, lp_old, lp_ref, adv, w, eps, beta):
    ratio = np.exp(lp_new - lp_old)
    pol = -np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv)
    d = lp_ref - lp_new
    kl = np.exp(d) - d - 1
    return ((pol + beta * kl) * w).sum() / max(w.sum(), 1e-8), ratio


def test_grpo_step_matches_numpy_loss_and_grad():
    setup, state = _setup()
    model, layout = setup.model, setup.layout
    g = GRPOConfig(group_size=2, num_iterations=1, clip_eps=0.2, beta=0.05, rewards={})
    rows, masks = _rollouts(layout)
    params0 = jax.device_get(state.params)
    lp = _np_logprob(model, params0, rows, masks, layout.mask)
    # Old / reference log-likelihoods off the current ones so ratios clip on both sides.
    logp_old = (lp + np.array([0.4, -0.4, 0.05, -0.05])).astype(np.float32)
    logp_ref = (lp + np.array([0.1, -0.2, 0.3, 0.0])).astype(np.float32)
    rewards = np.array([2.5, 0.0, 1.0, 2.0], np.float32)
    adv, keep = tr.group_stats(rewards, rewards >= 2.0, None, g, 2)
    np.testing.assert_allclose(adv, [1, -1, -1, 1], atol=1e-3)
    batch = dict(rows, masks=masks, logp_old=logp_old, logp_ref=logp_ref,
                 advantages=adv.astype(np.float32), weights=keep.astype(np.float32))

    want, ratio = _np_loss(lp, logp_old, logp_ref, adv, keep, g.clip_eps, g.beta)
    assert (ratio > 1.2).any() and (ratio < 0.8).any()  # both clip sides exercised

    # Plain-JAX re-computation of the gradient, written independently of rl/ and trainer.py.
    def ref_loss(p):
        tot = 0.0
        for j in range(M):
            mk = jnp.asarray(masks[:, j])
            noisy = jnp.where(mk, layout.mask, rows["tokens"])
            lg = model.apply({"params": p}, noisy, key_mask=rows["key_mask"],
                             positions=rows["positions"])
            lps = jax.nn.log_softmax(lg, -1)
            tl = jnp.take_along_axis(lps, rows["tokens"][..., None], -1)[..., 0]
            tot = tot + (tl * mk).sum(-1) / jnp.maximum(mk.sum(-1), 1)
        new = tot / M
        r = jnp.exp(new - logp_old)
        pol = -jnp.minimum(r * adv, jnp.clip(r, 0.8, 1.2) * adv)
        d = logp_ref - new
        return (((pol + 0.05 * (jnp.exp(d) - d - 1)) * keep).sum() / keep.sum())

    ref_val, ref_grads = jax.value_and_grad(ref_loss)(params0)
    np.testing.assert_allclose(float(ref_val), want, rtol=1e-4, atol=1e-5)

    # SGD(lr 1) instead of AdamW, so the update is exactly minus the step's gradient.
    sgd = optax.sgd(1.0)
    step = jax.jit(tr.make_grpo_step(model, sgd, layout.mask, g, clip_norm=0.0))
    new_state, m = step(state.replace(opt_state=sgd.init(state.params)), batch)
    np.testing.assert_allclose(float(m["loss"]), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(m["row_logp"]), lp, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(float(m["grad_norm"]), float(optax.tree.norm(ref_grads)),
                               rtol=1e-3)
    for a, p0, gr in zip(jax.tree_util.tree_leaves(new_state.params),
                         jax.tree_util.tree_leaves(params0), jax.tree_util.tree_leaves(ref_grads)):
        got = np.asarray(p0) - np.asarray(a)
        np.testing.assert_allclose(got, np.asarray(gr), rtol=1e-3,
                                   atol=1e-4 * float(np.abs(gr).max()) + 1e-9)
    # Clip fraction: weighted over kept rows, as the NumPy ratios say.
    clipped = ((adv > 0) & (ratio > 1.2)) | ((adv < 0) & (ratio < 0.8))
    np.testing.assert_allclose(float(m["clip_fraction"]),
                               (clipped * keep).sum() / keep.sum(), atol=1e-6)


def test_group_filter_in_trainer_drops_groups_without_signal():
    g = GRPOConfig(group_size=2, filter_low=0.05, filter_high=0.95, rewards={})
    rewards = np.array([2.5, 0.5,   # mixed: kept
                        2.5, 2.5,   # all pass: dropped
                        0.0, 0.0,   # constant: dropped
                        0.5, 0.0],  # signal, but nobody passes: dropped (pass rate 0)
                       np.float32)
    adv, keep = tr.group_stats(rewards, rewards >= 2.0, None, g, 2)
    np.testing.assert_array_equal(keep, [1, 1, 0, 0, 0, 0, 0, 0])
    g0 = GRPOConfig(group_size=2, filter_low=0.0, filter_high=1.0, rewards={})
    _, keep0 = tr.group_stats(rewards, rewards >= 2.0, None, g0, 2)
    np.testing.assert_array_equal(keep0, [1, 1, 0, 0, 0, 0, 1, 1])  # only constant groups go


def test_filtered_rows_do_not_move_the_update():
    setup, state = _setup()
    model, layout = setup.model, setup.layout
    g = GRPOConfig(group_size=2, num_iterations=1, beta=0.01, rewards={})
    rows, masks = _rollouts(layout)
    lp = _np_logprob(model, jax.device_get(state.params), rows, masks, layout.mask)
    base = dict(rows, masks=masks, logp_old=lp.astype(np.float32), logp_ref=lp.astype(np.float32),
                advantages=np.array([1, -1, 0, 0], np.float32),
                weights=np.array([1, 1, 0, 0], np.float32))
    other = dict(base, tokens=base["tokens"].copy())
    other["tokens"][2:] = (other["tokens"][2:] + 7) % 256  # change only the dropped group
    step = jax.jit(tr.make_grpo_step(model, setup.tx, layout.mask, g))
    s1, m1 = step(jax.tree_util.tree_map(jnp.copy, state), base)
    s2, m2 = step(jax.tree_util.tree_map(jnp.copy, state), other)
    assert float(m1["kept"]) == 2.0
    np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(s1.params), jax.tree_util.tree_leaves(s2.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_task_loss_weights_scale_rows_in_the_loss():
    """`rl.tasks.<task>.loss_weight` weighs each task's kept rows in the loss's weighted mean."""
    import pytest
    rl = tr.rl_config()
    rl.tasks.vqa.loss_weight = 3.0
    w = tr.task_loss_weights(rl, ["reasoning", "vqa", "vqa", "t2i"])
    np.testing.assert_array_equal(w, [1, 3, 3, 1])
    for bad in (-1.0, float("nan")):
        rl.tasks.t2i.loss_weight = bad
        with pytest.raises(ValueError, match="config.rl.tasks.t2i.loss_weight"):
            tr.task_loss_weights(rl, ["t2i"])

    setup, state = _setup()
    model, layout = setup.model, setup.layout
    g = GRPOConfig(group_size=2, num_iterations=1, clip_eps=0.2, beta=0.05, rewards={})
    rows, masks = _rollouts(layout)
    lp = _np_logprob(model, jax.device_get(state.params), rows, masks, layout.mask)
    logp_old = (lp + np.array([0.3, -0.1, 0.05, -0.3])).astype(np.float32)
    adv = np.array([1, -1, 1, -1], np.float32)
    weights = np.array([1, 1, 3, 3], np.float32)  # a reasoning group and a VQA group at 3x
    batch = dict(rows, masks=masks, logp_old=logp_old, logp_ref=lp.astype(np.float32),
                 advantages=adv, weights=weights)
    want, _ = _np_loss(lp, logp_old, lp, adv, weights, g.clip_eps, g.beta)
    _, m = jax.jit(tr.make_grpo_step(model, setup.tx, layout.mask, g))(state, batch)
    np.testing.assert_allclose(float(m["loss"]), want, rtol=1e-4, atol=1e-5)
    unweighted, _ = _np_loss(lp, logp_old, lp, adv, np.ones(4), g.clip_eps, g.beta)
    assert abs(want - unweighted) > 1e-3  # the weights matter for this batch


def test_step_without_weighted_groups_skips_the_update_and_its_passes():
    """A step whose kept groups all belong to tasks of loss weight 0 (or with no kept group)
    leaves the state alone and runs no log-likelihood pass."""
    import functools
    import types

    from mmada_jax.rl.replay import PromptReplay

    def never(*_):
        raise AssertionError("no forward pass expected")

    rl = tr.rl_config()
    rl.group_size = 2
    rl.tasks.vqa.loss_weight = 0.0
    rb = tr.RolloutBatch(
        rows=dict(tokens=np.zeros((4, 8), np.int32)), region=np.ones((4, 8), bool),
        task=["reasoning", "reasoning", "vqa", "vqa"],
        rewards=np.array([2.5, 2.5, 2.5, 0.0], np.float32),  # only the VQA group has signal
        passed=np.array([1, 1, 1, 0], bool), parts={}, completions=[""] * 4, prompts=[""] * 4)
    params = object()
    fake = types.SimpleNamespace(rl=rl, g=GRPOConfig(group_size=2, rewards={}),
                                 state=types.SimpleNamespace(params=params),
                                 rollout=lambda params, step, items=None: rb,
                                 fns=types.SimpleNamespace(logprob=never, step=never),
                                 replay=PromptReplay({}), anchor=None,
                                 step_prompts=lambda step: ({}, {}),
                                 _update_replay=lambda *a: {})
    fake._summarize = functools.partial(tr.UniGRPO._summarize, fake)
    out = tr.UniGRPO.train_step(fake, 0)
    assert fake.state.params is params
    assert out["loss"] == 0.0 and out["kept_fraction"] == 0.5 and out["vqa/kept_fraction"] == 1.0


def test_rollout_regions_and_concat():
    from mmada_jax.rl import rollout as ro
    gen = np.array([[5, 6, 9, 9], [5, 5, 5, 5]])
    np.testing.assert_array_equal(ro.first_eos_region(gen, 9),
                                  [[1, 1, 1, 0], [1, 1, 1, 1]])
    a = ro.Samples(np.ones((2, 3), np.int32), np.ones((2, 3), bool), np.zeros((2, 3), np.int32),
                   np.ones((2, 3), bool), ["x", "y"])
    b = ro.Samples(np.full((1, 5), 2, np.int32), np.ones((1, 5), bool),
                   np.zeros((1, 5), np.int32), np.zeros((1, 5), bool), ["z"])
    c = ro.concat([a, b], 6)
    assert c.tokens.shape == (3, 6) and c.completions == ["x", "y", "z"]
    assert not c.key_mask[:2, 3:].any() and not c.region[:, 5].any()
    assert ro.repeat([1, 2], 3) == [1, 1, 1, 2, 2, 2]


def test_grpo_functions_sharded_over_8_devices():
    if len(jax.devices()) < 8:
        import pytest
        pytest.skip("needs 8 (fake) devices")
    c = base_config()
    c.model.dtype = "float32"
    c.seq_len = L
    c.mesh.data, c.mesh.fsdp = 4, 2
    for t in c.tasks.values():
        t.batch_size = 8
    setup = build(c, jax.devices()[:8])
    state = init_train_state(setup.model, setup.tx, c, setup.mesh, jax.random.key(0),
                             setup.state_shardings)
    g = GRPOConfig(group_size=2, num_iterations=1, rewards={})
    fns = tr.GRPOFunctions(setup, g)
    rows, masks = _rollouts(setup.layout)
    rows = {k: np.concatenate([v, v]) for k, v in rows.items()}
    masks = np.concatenate([masks, masks])
    lp = np.asarray(fns.logprob(state.params, rows, masks))
    np.testing.assert_allclose(lp[:4], lp[4:], rtol=1e-5)
    one = _np_logprob(setup.model, jax.device_get(state.params),
                      {k: v[:4] for k, v in rows.items()}, masks[:4], setup.layout.mask)
    np.testing.assert_allclose(lp[:4], one, rtol=1e-4, atol=1e-4)
    batch = dict(rows, masks=masks, logp_old=lp, logp_ref=lp,
                 advantages=np.tile(np.float32([1, -1]), 4), weights=np.ones(8, np.float32))
    state, m = fns.step(state, batch)
    assert np.isfinite(float(m["loss"])) and int(state.step) == 1


def test_vqa_rollout_kinds_from_config():
    """`rl.tasks.vqa.kinds` picks the VQA rollout questions, in turn; a bad list names the key."""
    import pytest
    from mmada_jax.evals import shapesworld_eval as swe
    rl = tr.rl_config()
    assert tr.vqa_kinds(rl) == ("count", "color", "position")
    rl.tasks.vqa.kinds = " count, position "
    kinds = tr.vqa_kinds(rl)
    assert kinds == ("count", "position")
    items = swe.vqa_items(6, "train", 3, kinds=kinds, max_objects=3)
    assert [it["kind"] for it in items] == ["count", "position"] * 3
    for bad in ("count,caption", "", "colour"):
        rl.tasks.vqa.kinds = bad
        with pytest.raises(ValueError, match="config.rl.tasks.vqa.kinds"):
            tr.vqa_kinds(rl)


def test_vqa_rollout_kinds_rotate_across_steps():
    """With fewer prompts a step than kinds, every kind still comes up, equally often (the cpu
    demo asks 2 VQA prompts a step of 3 kinds: a fixed start left position questions out)."""
    import collections
    import types
    import ml_collections
    rl = tr.rl_config()
    rl.tasks.vqa.prompts = 2
    trainer = types.SimpleNamespace(rl=rl, config=ml_collections.ConfigDict(dict(data=None)))
    counts = collections.Counter(
        it["kind"] for step in range(6) for it in tr.UniGRPO.prompts_for(trainer, "vqa", step))
    assert counts == {"count": 4, "color": 4, "position": 4}
    with_seed = [it["question"] for it in tr.UniGRPO.prompts_for(trainer, "vqa", 1)]
    assert with_seed == [it["question"] for it in tr.UniGRPO.prompts_for(trainer, "vqa", 1)]


def test_update_rows_keeps_weighted_rows_and_pads_with_dropped_ones():
    import pytest
    rng = np.random.default_rng(5)
    for n, q in [(48, 12), (12, 4), (10, 3), (7, 5)]:
        for _ in range(20):
            w = (rng.random(n) < rng.random()).astype(np.float32) * rng.integers(1, 4, n)
            idx = tr.update_rows(w, q)
            k = int((w > 0).sum())
            assert len(idx) == (min(n, -(-k // q) * q) if k else 0)
            assert len(set(idx.tolist())) == len(idx)  # no row twice
            np.testing.assert_array_equal(idx[:k], np.flatnonzero(w > 0))
            assert np.all(w[idx[k:]] == 0)
    np.testing.assert_array_equal(tr.update_rows(np.zeros(6), 0), np.arange(6))
    with pytest.raises(ValueError, match="update_quantum"):
        tr.update_rows(np.ones(4), -2)


def test_update_on_kept_rows_matches_the_update_on_every_row():
    """`rl.update_quantum`: the passes run on the kept groups' rows (padded to a multiple of the
    quantum); the parameters after the step and the logged KL match the all-rows update."""
    import functools
    import types

    from mmada_jax.rl.replay import PromptReplay
    setup, state = _setup()
    n, gsz = 8, 2
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 256, size=(n, L)).astype(np.int32)
    key_mask = np.ones((n, L), bool)
    key_mask[3, :2] = False
    region = np.zeros((n, L), bool)
    region[:, 6:] = True
    rows = dict(tokens=tokens, key_mask=key_mask,
                positions=np.asarray(mask_positions(jnp.asarray(key_mask))))
    rb = tr.RolloutBatch(
        rows=rows, region=region, task=["reasoning"] * 4 + ["vqa"] * 4,
        rewards=np.array([2.5, 0.5, 2.5, 2.5, 0.0, 0.0, 3.0, 1.0], np.float32),  # groups 0, 3
        passed=np.array([1, 0, 1, 1, 0, 0, 1, 0], bool), parts={}, completions=[""] * n,
        prompts=[""] * n)
    g = GRPOConfig(group_size=gsz, num_iterations=2, beta=0.05, rewards={}, filter_low=0.0,
                   filter_high=1.0)
    calls = []

    def run(quantum):
        rl = tr.rl_config()
        rl.group_size, rl.num_iterations, rl.update_quantum = gsz, 2, quantum
        fns = tr.GRPOFunctions(setup, g)
        logprob = fns.logprob

        def counted(params, r, masks):
            calls.append((quantum, r["tokens"].shape[0]))
            return logprob(params, r, masks)
        fns.logprob = counted
        fake = types.SimpleNamespace(
            rl=rl, g=g, state=jax.tree_util.tree_map(jnp.copy, state),
            ref_params=jax.tree_util.tree_map(lambda x: x + 0.01, state.params),
            rollout=lambda params, step, items=None: rb, fns=fns, replay=PromptReplay({}),
            anchor=None, step_prompts=lambda step: ({}, {}), _update_replay=lambda *a: {})
        fake._summarize = functools.partial(tr.UniGRPO._summarize, fake)
        out = tr.UniGRPO.train_step(fake, 3)
        return fake.state, out

    s_all, o_all = run(0)
    s_kept, o_kept = run(2)
    assert {c[1] for c in calls if c[0] == 0} == {8} and {c[1] for c in calls if c[0] == 2} == {4}
    # Adam's first step is about lr (1e-2) x sign(grad) per parameter: a wrong row set moves
    # parameters by ~1e-2; float rounding only flips the few with near-zero gradients a little
    for a, b in zip(jax.tree_util.tree_leaves(s_all.params),
                    jax.tree_util.tree_leaves(s_kept.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-4)
    assert abs(o_all["grad_norm"] - o_kept["grad_norm"]) < 1e-5 * o_all["grad_norm"]
    assert abs(o_all["loss"] - o_kept["loss"]) < 1e-5 * max(1.0, abs(o_all["loss"]))
    assert abs(o_all["kl"] - o_kept["kl"]) < 1e-6 + 1e-4 * abs(o_all["kl"])
    assert o_kept["reasoning/kl"] > 0 and o_kept["vqa/kl"] > 0  # over each task's kept rows
