"""mmada_jax.tokenizers."""
