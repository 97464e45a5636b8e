"""The MMaDA backbone, attention dispatch and remat policies."""

from mmada_jax.model.transformer import (  # noqa: F401
    Block, MMaDAModel, build_model, param_count, stack_layers, unstack_layers)
