"""Masked-diffusion objectives by name (`config.tasks.<task>.objective`).

An objective corrupts its task's rows (`corrupt`) and scores the model's logits on them (`loss`).
The train step runs every task's corrupted rows through the model in one call.
"""

from mmada_jax.objectives.base import (  # noqa: F401
    Objective, get_objective, objective_names, objective_rows, register_objective, slice_scores,
    token_cross_entropy, token_scores)
from mmada_jax.objectives import text, image, text_full, text_suffix  # noqa: F401  (built-ins)
from mmada_jax.objectives.schedules import get_schedule, register_schedule  # noqa: F401
