"""The UniGRPO pieces composed into one jitted step on a toy masked model: a few steps raise the
likelihood of the rewarded responses and lower that of the others."""

import jax
import jax.numpy as jnp
import numpy as np

from mmada_jax.rl import advantages, config, logprob, losses, masking


def test_toy_unigrpo_steps_move_likelihood_with_advantage():
    cfg = config.GRPOConfig(group_size=4, num_iterations=2, beta=0.0)  # KL path: test_rl_math
    v, l, prompt_len, mask_id = 11, 7, 3, 10
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, v - 1, size=(4, l)).astype(np.int32)
    region = np.zeros((4, l), bool)
    region[:, prompt_len:] = True
    rewards = np.array([2.5, 0.5, 0.5, 2.5], np.float32)
    adv = advantages.group_advantages(rewards, cfg.group_size, eps=cfg.adv_eps)
    keep = advantages.group_filter(rewards, cfg.group_size, pass_threshold=cfg.pass_threshold)
    params0 = {"tok": jnp.asarray(rng.normal(size=(v, v)) * 0.1, jnp.float32),
               "pos": jnp.zeros((l, v), jnp.float32)}

    def logits_fn(p, noisy):  # each position sees its own input token and the row's mean
        x = p["tok"][noisy]
        return x + x.mean(1, keepdims=True) + p["pos"]

    @jax.jit
    def step(p, key):
        masks, _ = masking.unigrpo_masks(key, region, cfg.num_iterations, cfg.t_min, cfg.t_max,
                                         cfg.group_size)
        lp = lambda q: logprob.sequence_logprob(lambda t: logits_fn(q, t), tokens, masks, mask_id)
        old = jax.lax.stop_gradient(lp(p))

        def loss_fn(q):
            return losses.unigrpo_loss(lp(q), old, None, adv, keep, clip_eps=cfg.clip_eps,
                                       beta=cfg.beta)

        (loss, m), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        return jax.tree.map(lambda a, b: a - 0.5 * b, p, g), m

    full = jnp.broadcast_to(jnp.asarray(region)[None], (1, 4, l))
    eval_lp = jax.jit(lambda p: logprob.sequence_logprob(lambda t: logits_fn(p, t), tokens, full,
                                                         mask_id))
    before = np.asarray(eval_lp(params0))
    p = params0
    for i in range(4):
        p, m = step(p, jax.random.key(i))
    after = np.asarray(eval_lp(p))
    delta = after - before
    assert float(m["kept"]) == 4.0 and np.isfinite(float(m["loss"]))
    assert delta[0] > 0 and delta[3] > 0 and delta[1] < 0 and delta[2] < 0, delta
