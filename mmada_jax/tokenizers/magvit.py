"""MAGVIT-v2 image tokenizer (the architecture Show-o released as `magvitv2`), in Flax Linen.

Images are NHWC in [-1, 1]. The encoder downsamples by 2^(levels-1) (16 for the released five
levels), the LFQ quantizer turns each latent position into a `bits`-bit code, and the decoder maps
code vectors back to images. Every size is a `MagvitConfig` field, so `MagvitConfig.showo()` (the
released 256/512 px tokenizer) and a tiny test variant are the same code.

Submodule names follow the release's state-dict keys so conversion is mechanical
(`encoder.down.{i}.block.{j}.conv1.weight` <-> `encoder/down_{i}/block_{j}/conv1/kernel`, see
`magvit_convert`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from mmada_jax.tokenizers import lfq


@dataclasses.dataclass(frozen=True)
class MagvitConfig:
    """Sizes of a MAGVIT-v2 tokenizer (defaults: the release).

    ch: base channels; ch_mult / num_res_blocks: per encoder level (a downsample after every
    level but the last); dec_ch_mult / dec_num_res_blocks: per decoder level, indexed like the
    release (level 0 is the finest; levels run from last to first, with an upsample after every
    level but level 0); bits: latent channels = log2(codebook size).
    """

    ch: int = 128
    ch_mult: Sequence[int] = (1, 2, 2, 4, 4)
    num_res_blocks: Sequence[int] = (4, 3, 4, 3, 4)
    dec_ch_mult: Sequence[int] = (1, 1, 2, 2, 4)
    dec_num_res_blocks: Sequence[int] = (4, 4, 3, 4, 3)
    bits: int = 13
    in_channels: int = 3
    out_channels: int = 3
    num_groups: int = 32
    norm_eps: float = 1e-6
    dtype: str = "float32"
    param_dtype: str = "float32"

    def __post_init__(self):
        for f in ("ch_mult", "num_res_blocks", "dec_ch_mult", "dec_num_res_blocks"):
            object.__setattr__(self, f, tuple(int(v) for v in getattr(self, f)))
        if len(self.ch_mult) != len(self.num_res_blocks):
            raise ValueError(f"MagvitConfig: ch_mult {self.ch_mult} and num_res_blocks "
                             f"{self.num_res_blocks} differ in length")
        if len(self.dec_ch_mult) != len(self.dec_num_res_blocks):
            raise ValueError(f"MagvitConfig: dec_ch_mult {self.dec_ch_mult} and "
                             f"dec_num_res_blocks {self.dec_num_res_blocks} differ in length")
        if len(self.dec_ch_mult) != len(self.ch_mult):
            raise ValueError("MagvitConfig: encoder and decoder need the same number of levels")
        chans = {self.ch * m for m in self.ch_mult + self.dec_ch_mult}
        bad = sorted(c for c in chans if c % self.num_groups)
        if bad:
            raise ValueError(f"MagvitConfig: channels {bad} not divisible by "
                             f"num_groups={self.num_groups}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def codebook_size(self) -> int:
        return 2 ** self.bits

    def latent_hw(self, height: int, width: int) -> tuple[int, int]:
        f = self.downsample_factor
        if height % f or width % f:
            raise ValueError(f"MAGVIT-v2: image size {height}x{width} is not divisible by the "
                             f"downsampling factor {f}")
        return height // f, width // f

    @classmethod
    def showo(cls, **overrides) -> "MagvitConfig":
        """The released Show-o / MMaDA tokenizer (13 bits; 256 px -> 16x16, 512 px -> 32x32)."""
        return cls(**overrides)

    @classmethod
    def from_dict(cls, d) -> "MagvitConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"MagvitConfig: unknown fields {unknown}; known: {sorted(fields)}")
        return cls(**dict(d))

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}


# ------------------------------------------------------------------------------- layers
def _conv(cfg: MagvitConfig, features: int, k: int, name: str, stride: int = 1,
          padding=None) -> nn.Conv:
    pad = ((k // 2, k // 2),) * 2 if padding is None else padding
    return nn.Conv(features, (k, k), strides=(stride, stride), padding=pad,
                   dtype=jnp.dtype(cfg.dtype), param_dtype=jnp.dtype(cfg.param_dtype), name=name)


def _norm(cfg: MagvitConfig, name: str) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=cfg.num_groups, epsilon=cfg.norm_eps, use_fast_variance=False,
                        dtype=jnp.dtype(cfg.dtype), param_dtype=jnp.dtype(cfg.param_dtype),
                        name=name)


class ResBlock(nn.Module):
    """norm1-swish-conv1-norm2-swish-conv2 plus a (1x1 `nin_shortcut` when channels change)
    skip. x [B, H, W, Cin] -> [B, H, W, out_ch]."""

    cfg: MagvitConfig
    out_ch: int

    @nn.compact
    def __call__(self, x):
        h = _conv(self.cfg, self.out_ch, 3, "conv1")(nn.swish(_norm(self.cfg, "norm1")(x)))
        h = _conv(self.cfg, self.out_ch, 3, "conv2")(nn.swish(_norm(self.cfg, "norm2")(h)))
        if x.shape[-1] != self.out_ch:
            x = _conv(self.cfg, self.out_ch, 1, "nin_shortcut")(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all H*W positions, q/k/v/proj_out as 1x1 convs, scale
    C^-1/2, softmax in float32, residual. x [B, H, W, C] -> same."""

    cfg: MagvitConfig

    @nn.compact
    def __call__(self, x):
        b, hh, ww, c = x.shape
        h = _norm(self.cfg, "norm")(x)
        q, k, v = (_conv(self.cfg, c, 1, n)(h).reshape(b, hh * ww, c) for n in ("q", "k", "v"))
        logits = jnp.einsum("bic,bjc->bij", q, k, preferred_element_type=jnp.float32) * c ** -0.5
        w = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        out = jnp.einsum("bij,bjc->bic", w, v).reshape(b, hh, ww, c)
        return x + _conv(self.cfg, c, 1, "proj_out")(out)


class Downsample(nn.Module):
    """Zero-pad right/bottom by 1, then 3x3 conv stride 2 without padding: H, W -> H/2, W/2."""

    cfg: MagvitConfig

    @nn.compact
    def __call__(self, x):
        return _conv(self.cfg, x.shape[-1], 3, "conv", stride=2, padding=((0, 1), (0, 1)))(x)


class Upsample(nn.Module):
    """Nearest x2, then 3x3 conv: H, W -> 2H, 2W."""

    cfg: MagvitConfig

    @nn.compact
    def __call__(self, x):
        x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        return _conv(self.cfg, x.shape[-1], 3, "conv")(x)


class Level(nn.Module):
    """`num_blocks` ResBlocks to `out_ch` (`block_{j}`), then an optional resampler."""

    cfg: MagvitConfig
    out_ch: int
    num_blocks: int
    resample: str | None = None  # 'down' | 'up' | None

    @nn.compact
    def __call__(self, x):
        for j in range(self.num_blocks):
            x = ResBlock(self.cfg, self.out_ch, name=f"block_{j}")(x)
        if self.resample == "down":
            x = Downsample(self.cfg, name="downsample")(x)
        elif self.resample == "up":
            x = Upsample(self.cfg, name="upsample")(x)
        return x


class MidBlock(nn.Module):
    """block_1, attn_1, block_2 at constant channels."""

    cfg: MagvitConfig

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        x = ResBlock(self.cfg, c, name="block_1")(x)
        x = AttnBlock(self.cfg, name="attn_1")(x)
        return ResBlock(self.cfg, c, name="block_2")(x)


class Encoder(nn.Module):
    """images [B, H, W, in_ch] -> latents [B, H/f, W/f, bits] (after quant_conv), f = 2^(L-1)."""

    cfg: MagvitConfig

    @nn.compact
    def __call__(self, x):
        cfg = self.cfg
        x = _conv(cfg, cfg.ch, 3, "conv_in")(x.astype(cfg.dtype))
        last = len(cfg.ch_mult) - 1
        for i, (m, n) in enumerate(zip(cfg.ch_mult, cfg.num_res_blocks)):
            x = Level(cfg, cfg.ch * m, n, "down" if i != last else None, name=f"down_{i}")(x)
        x = MidBlock(cfg, name="mid")(x)
        x = nn.swish(_norm(cfg, "norm_out")(x))
        x = _conv(cfg, cfg.bits, 3, "conv_out")(x)
        return _conv(cfg, cfg.bits, 1, "quant_conv")(x)


class Decoder(nn.Module):
    """code vectors [B, h, w, bits] -> images [B, h*f, w*f, out_ch] (unclipped)."""

    cfg: MagvitConfig

    @nn.compact
    def __call__(self, z):
        cfg = self.cfg
        z = _conv(cfg, cfg.bits, 1, "post_quant_conv")(z.astype(cfg.dtype))
        x = _conv(cfg, cfg.ch * cfg.dec_ch_mult[-1], 3, "conv_in")(z)
        x = MidBlock(cfg, name="mid")(x)
        for i in reversed(range(len(cfg.dec_ch_mult))):
            x = Level(cfg, cfg.ch * cfg.dec_ch_mult[i], cfg.dec_num_res_blocks[i],
                      "up" if i != 0 else None, name=f"up_{i}")(x)
        x = nn.swish(_norm(cfg, "norm_out")(x))
        return _conv(cfg, cfg.out_channels, 3, "conv_out")(x).astype(jnp.float32)


class MAGVITv2(nn.Module):
    """Encoder + LFQ + decoder. Methods (use with `model.apply(variables, x, method=...)`):

      encode_latents(images [B,H,W,3]) -> z float32 [B, h, w, bits]
      encode(images) -> codes int32 [B, h, w]
      decode(codes [B, h, w], clip=True) -> images float32 [B, H, W, 3] in [-1, 1]
      decode_latents(z_q [B, h, w, bits]) -> images (unclipped)
      __call__(images) -> dict(recon, z, z_q, codes): the training forward pass (straight-through
        quantization, unclipped reconstruction).
    """

    cfg: MagvitConfig

    def setup(self):
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def _check(self, images):
        if images.ndim != 4 or images.shape[-1] != self.cfg.in_channels:
            raise ValueError(f"MAGVIT-v2: images must be [B, H, W, {self.cfg.in_channels}], "
                             f"got {images.shape}")
        self.cfg.latent_hw(images.shape[1], images.shape[2])

    def encode_latents(self, images):
        self._check(images)
        return self.encoder(images).astype(jnp.float32)

    def encode(self, images):
        return lfq.codes_from_latents(self.encode_latents(images))

    def decode_latents(self, z_q):
        return self.decoder(z_q)

    def decode(self, codes, clip: bool = True):
        if codes.ndim != 3:
            raise ValueError(f"MAGVIT-v2: codes must be [B, h, w], got {codes.shape}")
        x = self.decoder(lfq.codes_to_vectors(codes, self.cfg.bits))
        return jnp.clip(x, -1.0, 1.0) if clip else x

    def __call__(self, images):
        z = self.encode_latents(images)
        z_q = lfq.quantize(z)
        return dict(recon=self.decoder(z_q), z=z, z_q=z_q, codes=lfq.codes_from_latents(z))


def _init(cfg: MagvitConfig, rng, size: int):
    x = jnp.zeros((1, size, size, cfg.in_channels), jnp.float32)
    return MAGVITv2(cfg).init(rng, x)["params"]


@functools.lru_cache(maxsize=8)
def param_shapes(cfg: MagvitConfig):
    """Parameter tree of ShapeDtypeStructs, without computing anything (cached per config)."""
    return jax.eval_shape(lambda: _init(cfg, jax.random.key(0), cfg.downsample_factor))


def init_params(cfg: MagvitConfig, seed: int = 0):
    """Random parameters drawn on the host with NumPy (XLA's CPU compile of a Flax init with
    hundreds of truncated-normal draws takes minutes): conv kernels [kh, kw, in, out] from
    Flax's default lecun-normal (truncated at 2 std), biases 0, norm scales 1."""
    rng = np.random.default_rng(seed)

    def leaf(path, s):
        name = path[-1].key
        if name == "kernel":
            std = np.sqrt(1.0 / np.prod(s.shape[:-1])) / 0.87962566103423978
            w = rng.standard_normal(s.shape)
            bad = np.abs(w) > 2
            while bad.any():
                w[bad] = rng.standard_normal(int(bad.sum()))
                bad = np.abs(w) > 2
            return jnp.asarray(w * std, s.dtype)
        return jnp.ones(s.shape, s.dtype) if name == "scale" else jnp.zeros(s.shape, s.dtype)

    return jax.tree_util.tree_map_with_path(leaf, param_shapes(cfg))
