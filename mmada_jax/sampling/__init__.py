"""mmada_jax.sampling."""
