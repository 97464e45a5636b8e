"""mmada_jax.evals."""
