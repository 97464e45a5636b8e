"""The MMaDA backbone, attention dispatch and remat policies."""

from mmada_jax.model.transformer import Block, MMaDAModel, build_model, param_count  # noqa: F401
