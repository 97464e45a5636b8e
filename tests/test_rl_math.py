"""UniGRPO math against plain-NumPy float64 references, on random inputs at awkward sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmada_jax.rl import advantages as adv_lib
from mmada_jax.rl import config as config_lib
from mmada_jax.rl import logprob, losses, masking


# ----------------------------------------------------------------------------- masking
_ratios = jax.jit(masking.structured_mask_ratios, static_argnums=(1, 2, 3, 4, 5))
_masks = jax.jit(masking.unigrpo_masks, static_argnums=(2, 3, 4))

@pytest.mark.parametrize("b,mu,t_min,t_max", [(7, 3, 0.1, 0.9), (5, 12, 0.0, 1.0), (1, 1, 0.2, 0.4)])
def test_structured_ratios_are_stratified(b, mu, t_min, t_max):
    r = np.asarray(_ratios(jax.random.key(b * 31 + mu), b, mu, t_min, t_max),
                   np.float64)
    assert r.shape == (mu, b)
    assert (r >= t_min).all() and (r < t_max + 1e-6).all()
    x = (r - t_min) / (t_max - t_min)
    fine = np.clip(np.floor(x * mu * b), 0, mu * b - 1).astype(int)
    # Every one of the mu*B fine cells is used exactly once.
    np.testing.assert_array_equal(np.sort(fine.ravel()), np.arange(mu * b))
    # Each response sees every coarse stratum once over its mu iterations.
    coarse = fine // b
    for j in range(b):
        np.testing.assert_array_equal(np.sort(coarse[:, j]), np.arange(mu))
    # Each iteration's coarse strata are as balanced as B allows.
    for i in range(mu):
        counts = np.bincount(coarse[i], minlength=mu)
        assert counts.max() - counts.min() <= 1


def test_structured_ratios_per_group():
    p, g, mu = 3, 5, 2
    r = np.asarray(_ratios(jax.random.key(7), p * g, mu, 0.1, 0.9, g), np.float64)
    assert r.shape == (mu, p * g)
    for k in range(p):
        x = (r[:, k * g:(k + 1) * g] - 0.1) / 0.8
        fine = np.clip(np.floor(x * mu * g), 0, mu * g - 1).astype(int)
        np.testing.assert_array_equal(np.sort(fine.ravel()), np.arange(mu * g))
    assert not np.allclose(r[:, :g], r[:, g:2 * g])
    with pytest.raises(ValueError, match="groups of 4"):
        masking.structured_mask_ratios(jax.random.key(0), 10, 2, group_size=4)


def test_structured_ratios_not_iid_and_vary_with_key():
    a = _ratios(jax.random.key(0), 7, 3, 0.1, 0.9)  # same static args as above: no recompile
    c = _ratios(jax.random.key(1), 7, 3, 0.1, 0.9)
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="t_min"):
        masking.structured_mask_ratios(jax.random.key(0), 4, 2, 0.9, 0.1)


def test_response_mask_exact_counts_and_region():
    rng = np.random.default_rng(0)
    b, l = 9, 23
    starts = rng.integers(0, l, size=b)
    lens = rng.integers(0, l, size=b)
    lens[0], lens[1] = 1, 0  # one-token and empty responses
    region = np.zeros((b, l), bool)
    for i in range(b):
        region[i, starts[i]:starts[i] + lens[i]] = True
    ratios = rng.uniform(0.0, 1.0, size=b)
    ratios[2] = 0.0  # still at least one
    mask = np.asarray(jax.jit(masking.response_mask)(jax.random.key(3), region, ratios))
    n = region.sum(1)
    want = np.where(n > 0, np.clip(np.round(ratios.astype(np.float32) * n), 1, n), 0)
    np.testing.assert_array_equal(mask.sum(1), want)
    assert not (mask & ~region).any()
    assert mask[1].sum() == 0 and mask[0].sum() == 1 and (n[2] == 0 or mask[2].sum() == 1)


def test_response_mask_is_uniform_over_positions():
    # Each response position is masked with frequency k/n.
    region = np.zeros((1, 13), bool)
    region[0, 3:11] = True  # n = 8, ratio 0.375 -> k = 3
    keys = jax.random.split(jax.random.key(0), 3000)
    masks = np.asarray(jax.jit(jax.vmap(lambda k: masking.response_mask(k, region, jnp.array([0.375]))))(keys))
    freq = masks[:, 0, 3:11].mean(0)
    np.testing.assert_allclose(freq, 3 / 8, atol=0.04)
    assert masks[:, 0, :3].sum() == 0 and masks[:, 0, 11:].sum() == 0


def test_unigrpo_masks_shapes_and_fresh_per_iteration():
    region = np.zeros((5, 17), bool)
    region[:, 6:] = True
    masks, ratios = _masks(jax.random.key(1), region, 4, 0.1, 0.9)
    masks = np.asarray(masks)
    assert masks.shape == (4, 5, 17) and ratios.shape == (4, 5)
    np.testing.assert_array_equal(masks.sum(-1), np.clip(np.round(np.asarray(ratios) * 11), 1, 11))
    assert not masks[..., :6].any()
    noisy = masking.apply_mask(jnp.ones((5, 17), jnp.int32), masks[0], 99)
    np.testing.assert_array_equal(np.asarray(noisy) == 99, masks[0])


# ----------------------------------------------------------------------------- log-probs
def _np_masked_logprob(logits, targets, mask):
    x = logits.astype(np.float64)
    m = x.max(-1, keepdims=True)
    lsm = x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))
    lp = np.take_along_axis(lsm, targets[..., None], -1)[..., 0]
    cnt = mask.sum(-1)
    return np.where(cnt > 0, (lp * mask).sum(-1) / np.maximum(cnt, 1), 0.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_masked_token_logprob_matches_numpy(dtype):
    rng = np.random.default_rng(1)
    b, l, v = 3, 11, 517
    logits = (rng.normal(size=(b, l, v)) * 6 + 40).astype(np.float32)  # large offset: stability
    logits = np.asarray(jnp.asarray(logits, dtype).astype(jnp.float32))
    targets = rng.integers(0, v, size=(b, l))
    mask = rng.random((b, l)) < 0.4
    mask[2] = False
    got = jax.jit(logprob.masked_token_logprob)(jnp.asarray(logits, dtype), targets, mask)
    want = _np_masked_logprob(logits, targets, mask)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)
    assert float(got[2]) == 0.0


def test_sequence_logprob_averages_iterations():
    rng = np.random.default_rng(2)
    b, l, v, mu, mask_id = 4, 9, 37, 3, 36
    table = rng.normal(size=(v, v)).astype(np.float32)
    pos = rng.normal(size=(l, v)).astype(np.float32)

    def logits_fn(tok):  # context-dependent toy model: token table + position + row mean
        x = jnp.asarray(table)[tok] + jnp.asarray(pos)
        return x + x.mean(1, keepdims=True)

    tokens = rng.integers(0, v - 1, size=(b, l)).astype(np.int32)
    masks = rng.random((mu, b, l)) < 0.5
    masks[:, :, 0] = True
    got = jax.jit(lambda t, m: logprob.sequence_logprob(logits_fn, t, m, mask_id))(tokens, masks)
    want = np.zeros(b)
    for i in range(mu):
        noisy = np.where(masks[i], mask_id, tokens)
        x = table.astype(np.float64)[noisy] + pos
        x = x + x.mean(1, keepdims=True)
        want += _np_masked_logprob(x, tokens, masks[i]) / mu
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------------------- advantages
def _np_grpo(r, eps):
    r = r.astype(np.float64)
    return (r - r.mean(-1, keepdims=True)) / (r.std(-1, keepdims=True) + eps)


def test_group_advantages_grpo_and_rloo():
    rng = np.random.default_rng(3)
    p, g = 5, 7
    r = rng.normal(size=(p, g)).astype(np.float32)
    r[1] = 2.5  # zero-std group -> zero advantage
    got = adv_lib.group_advantages(r.reshape(-1), g, eps=1e-4)
    assert got.shape == (p * g,)
    np.testing.assert_allclose(np.asarray(got).reshape(p, g), _np_grpo(r, 1e-4), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got).reshape(p, g)[1], 0.0)
    rl = np.asarray(adv_lib.group_advantages(r, eps=1e-4, estimator="rloo"))
    r64 = r.astype(np.float64)
    want = np.stack([[r64[i, j] - np.delete(r64[i], j).mean() for j in range(g)] for i in range(p)])
    np.testing.assert_allclose(rl, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="groups of 4"):
        adv_lib.group_advantages(np.zeros(10), 4)
    with pytest.raises(KeyError, match="registered"):
        adv_lib.group_advantages(r, estimator="nope")
    pos = np.asarray(adv_lib.group_advantages(r.reshape(-1), g, eps=1e-4,
                                              estimator="grpo_positive")).reshape(p, g)
    np.testing.assert_allclose(pos, np.maximum(_np_grpo(r, 1e-4), 0.0), rtol=1e-5, atol=1e-5)
    assert (pos[0] > 0).any() and (pos == 0).sum() > p  # the below-mean samples get exactly 0


def test_negative_advantages():
    rng = np.random.default_rng(11)
    p, g = 4, 6
    r = rng.integers(0, 4, size=(p, g)).astype(np.float32) * 0.5  # ties, like discrete rewards
    ref = _np_grpo(r, 1e-4)
    neg = np.asarray(adv_lib.group_advantages(r.reshape(-1), g, eps=1e-4,
                                              estimator="grpo_negative")).reshape(p, g)
    np.testing.assert_allclose(neg, np.minimum(ref, 0.0), rtol=1e-5, atol=1e-5)
    assert (neg < 0).any() and (ref > 0).any() and (neg[ref > 0] == 0).all()


def test_group_filter_pass_rate_and_zero_std():
    g = 16
    passes = [0, 1, 8, 15, 16]
    rewards = np.zeros((len(passes) + 1, g), np.float32)
    for i, k in enumerate(passes):
        rewards[i, :k] = 2.5
        rewards[i, k:] = 0.5
    rewards[-1] = 0.5  # constant group, no pass info -> dropped by zero std
    keep = np.asarray(adv_lib.group_filter(rewards.reshape(-1), g, pass_threshold=2.0)).reshape(-1, g)
    np.testing.assert_array_equal(keep[:, 0], [0, 1, 1, 1, 0, 0])
    assert (keep == keep[:, :1]).all()
    # std-only rule without pass information; low/high thresholds honoured.
    keep2 = np.asarray(adv_lib.group_filter(rewards))
    np.testing.assert_array_equal(keep2[:, 0], [0, 1, 1, 1, 0, 0])
    keep3 = np.asarray(adv_lib.group_filter(rewards, passed=rewards > 1, low=0.1, high=0.9))
    np.testing.assert_array_equal(keep3[:, 0], [0, 0, 1, 0, 0, 0])


# ----------------------------------------------------------------------------- loss
def _np_loss(new, old, ref, a, w, eps, beta, eps_hi=None):
    new, old, ref, a, w = (np.asarray(x, np.float64) for x in (new, old, ref, a, w))
    hi = eps if eps_hi is None else eps_hi
    r = np.exp(new - old)
    obj = np.minimum(r * a, np.clip(r, 1 - eps, 1 + hi) * a)
    kl = np.exp(ref - new) - (ref - new) - 1
    clipped = ((r > 1 + hi) & (a > 0)) | ((r < 1 - eps) & (a < 0))
    d = w.sum()
    return ((w * (-obj + beta * kl)).sum() / d, (w * kl).sum() / d, (w * clipped).sum() / d,
            (w * r).sum() / d)


@pytest.mark.parametrize("eps_hi", [None, 0.28])
def test_unigrpo_loss_matches_numpy(eps_hi):
    rng = np.random.default_rng(4)
    b = 13
    old = rng.normal(-2, 0.3, size=b)
    new = old + rng.normal(0, 0.4, size=b)  # ratios well outside [0.8, 1.2] on both sides
    ref = old + rng.normal(0, 0.2, size=b)
    a = rng.normal(size=b)
    w = (rng.random(b) < 0.7).astype(np.float32)
    r = np.exp(new - old)
    assert ((r > 1.3) & (a > 0) & (w > 0)).any() and ((r < 0.7) & (a < 0) & (w > 0)).any()
    loss, m = jax.jit(lambda *x: losses.unigrpo_loss(*x, clip_eps=0.2, beta=0.04,
                                                     clip_eps_high=eps_hi))(
        *(np.float32(x) for x in (new, old, ref, a, w)))
    want_loss, want_kl, want_clip, want_r = _np_loss(new, old, ref, a, w, 0.2, 0.04, eps_hi)
    np.testing.assert_allclose(float(loss), want_loss, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(float(m["kl"]), want_kl, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(float(m["clip_fraction"]), want_clip, atol=1e-6)
    np.testing.assert_allclose(float(m["ratio_mean"]), want_r, rtol=2e-5)
    assert 0 < want_clip < 1
    assert float(m["kept"]) == w.sum()


def test_unigrpo_loss_gradient_sign_and_clipping():
    a = np.array([1.5, -0.7, 0.9, -1.2, 2.0], np.float32)
    old = np.full(5, -3.0, np.float32)
    new = old + np.array([0.01, -0.02, 0.5, -0.5, 0.0], np.float32)  # 2: r>1.2,A>0; 3: r<0.8,A<0
    w = np.array([1, 1, 1, 1, 0], np.float32)
    g = jax.grad(lambda x: losses.unigrpo_loss(x, old, None, a, w, clip_eps=0.2, beta=0.0)[0])(new)
    g = np.asarray(g)
    # Unclipped: -dloss/dlogp_new has the sign of the advantage; clipped and dropped: zero.
    np.testing.assert_array_equal(np.sign(-g[:2]), np.sign(a[:2]))
    np.testing.assert_array_equal(g[2:], 0.0)
    # Against numpy: d/dnew of -(r A)/sum(w) = -r A / sum(w).
    r = np.exp((new - old).astype(np.float64))
    np.testing.assert_allclose(g[:2], -r[:2] * a[:2] / 4, rtol=1e-5)
    # KL gradient pulls toward the reference: d kl / d new = 1 - exp(ref - new).
    ref = new + 0.3
    gk = jax.grad(lambda x: losses.unigrpo_loss(x, x, ref, np.zeros(5, np.float32), np.ones(5),
                                                beta=1.0)[0])(new)
    np.testing.assert_allclose(np.asarray(gk), (1 - np.exp(0.3)) / 5, rtol=1e-4)


def test_unigrpo_loss_pg_and_errors():
    rng = np.random.default_rng(5)
    new, old, a = (rng.normal(size=6).astype(np.float32) for _ in range(3))
    w = np.ones(6, np.float32)
    loss, m = losses.unigrpo_loss(new, old, None, a, w, beta=0.0, policy_loss="pg")
    np.testing.assert_allclose(float(loss), -(np.exp(new.astype(np.float64) - old) * a).mean(),
                               rtol=1e-5)
    assert float(m["clip_fraction"]) == 0.0
    with pytest.raises(ValueError, match="advantages"):
        losses.unigrpo_loss(new, old, None, a[:5], w, beta=0.0)
    with pytest.raises(ValueError, match="logp_ref is None"):
        losses.unigrpo_loss(new, old, None, a, w, beta=0.1)
    with pytest.raises(KeyError, match="policy loss"):
        losses.unigrpo_loss(new, old, None, a, w, beta=0.0, policy_loss="nope")


def test_registries_accept_new_entries():
    @losses.register_policy_loss("test_neg_adv")
    def _neg(new, old, adv, *, clip_eps, clip_eps_high=None):
        return -adv + 0 * new, jnp.zeros(new.shape, bool)

    loss, _ = losses.unigrpo_loss(np.zeros(3), np.zeros(3), None, np.array([1., 2., 3.]),
                                  np.ones(3), beta=0.0, policy_loss="test_neg_adv")
    assert float(loss) == -2.0
    with pytest.raises(ValueError, match="already registered"):
        losses.register_policy_loss("grpo_clip")(lambda *a, **k: None)


# ----------------------------------------------------------------------------- config
def test_config_defaults_and_roundtrip():
    c = config_lib.GRPOConfig()
    assert (c.group_size, c.num_iterations, c.clip_eps, c.beta, c.t_min, c.t_max) == (16, 2, 0.2, 0.01,
                                                                                      0.1, 0.9)
    assert dict(c.rewards) == {"correctness": 1.0, "format": 1.0}
    hash(c)
    assert config_lib.GRPOConfig.from_dict(c.to_dict()) == c
    d = config_lib.GRPOConfig.diffu_grpo()
    assert (d.group_size, d.num_iterations, d.beta, d.clip_eps, d.learning_rate) == (6, 12, 0.04, 0.5,
                                                                                     3e-6)
    with pytest.raises(ValueError, match="unknown fields"):
        config_lib.GRPOConfig.from_dict({"mu": 3})
    with pytest.raises(ValueError, match="t_min"):
        config_lib.GRPOConfig(t_min=0.9, t_max=0.1)
