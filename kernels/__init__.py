"""Pallas attention kernels, importable as `mmada_jax.kernels` (the folder is mapped there).

Importing this package registers the implementations 'pallas', 'pallas_tpu', 'pallas_gpu',
'pallas_decode', 'cudnn' and the 'auto' chooser with `mmada_jax.model.attention`.
Modules: mask (the mask spec and the jnp reference), tpu_flash, gpu_flash, decode, sharding,
dispatch, aot (compile for a TPU topology on a CPU host).
"""

from mmada_jax.kernels import mask
from mmada_jax.kernels.mask import AttentionMask, make_mask, reference_attention
from mmada_jax.kernels.tpu_flash import flash_attention_tpu
from mmada_jax.kernels.gpu_flash import GpuConfig, flash_attention_gpu
from mmada_jax.kernels.decode import decode_attention
from mmada_jax.kernels.sharding import sharded_attention
from mmada_jax.kernels import dispatch  # noqa: F401  (registers the implementations)

__all__ = ["AttentionMask", "make_mask", "reference_attention", "flash_attention_tpu",
           "GpuConfig", "flash_attention_gpu", "decode_attention", "sharded_attention", "mask"]
