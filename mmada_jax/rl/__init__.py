"""mmada_jax.rl."""
