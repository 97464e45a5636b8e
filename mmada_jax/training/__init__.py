"""mmada_jax.training."""
