"""Hugging Face interop: the released MMaDA checkpoints (LLaDA key names) and Show-o's MAGVIT-v2.

    from mmada_jax.hf import load_pretrained
    model, params, layout = load_pretrained("/ckpt/MMaDA-8B-Base")
    logits = model.apply({"params": params}, tokens)           # [B, L, 134656]

CLI: `python -m mmada_jax.convert import-hf | export-hf | import-magvit | export-magvit`
(docs/scale.md).
Modules: keys (naming, config.json), safetensors_io (sharded reader / writer), backbone (streamed
import / export of the backbone), api (load_pretrained, import_hf, export_hf), magvit.
"""

from mmada_jax.hf.api import export_hf, import_hf, load_pretrained  # noqa: F401
from mmada_jax.hf.backbone import (CheckpointFormatError, export_params,  # noqa: F401
                                   import_params)
from mmada_jax.hf.keys import hf_config, release_shapes  # noqa: F401
