"""mmada_jax.rl: the pure parts of UniGRPO (spec section 5).

  masking     stratified mask ratios and response-only masks (prompt stays clean)
  logprob     per-sequence masked log-likelihood, averaged over mu maskings
  advantages  group advantages ('grpo', 'rloo') and group filtering, registered by name
  losses      clipped GRPO objective + k3 KL ('grpo_clip', 'pg'), registered by name
  rewards     correctness / format / scene-judge / learned rewards, registered by name
  config      GRPOConfig defaults

One UniGRPO step (the trainer wires the model in):
  masks, _ = masking.unigrpo_masks(rng, response_region, cfg.num_iterations, cfg.t_min, cfg.t_max)
  logp_old = logprob.sequence_logprob(old_logits_fn, tokens, masks, layout.mask)   # no grad
  logp_ref = logprob.sequence_logprob(ref_logits_fn, tokens, masks, layout.mask)   # no grad
  adv = advantages.group_advantages(rewards, cfg.group_size, eps=cfg.adv_eps)
  keep = advantages.group_filter(rewards, cfg.group_size, pass_threshold=cfg.pass_threshold, ...)
  loss, metrics = losses.unigrpo_loss(logprob.sequence_logprob(new_logits_fn, ...), logp_old,
                                      logp_ref, adv, keep, clip_eps=cfg.clip_eps, beta=cfg.beta)
"""
