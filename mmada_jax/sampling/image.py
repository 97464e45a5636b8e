"""MaskGIT text-to-image sampler (spec section 4) as one compiled loop.

    codes = generate_image(logits_fn, tokens [B, L], key_mask [B, L], uncond_tokens, uncond_key_mask,
                           key, ImageSamplerConfig(...), layout, image_start, num_image_tokens)

Rows are t2i prompts (`prompts.t2i_prompts`): the image span [image_start, image_start + V) holds
masks. Each step s of T, on image logits restricted to the codebook columns:
  CFG (MUSE form): logits = (1 + g) * cond - g * uncond; the unconditional row is the current row
    with everything before the image span (the text part and <|soi|>) taken from the
    unconditional prompt: its prefix is cut by text length, not image resolution (the release bug).
  sampled = a draw from softmax(logits) (Gumbel-max; token_temperature 0 = argmax), known kept;
  ratio = (s + 1) / T; mask_len = floor(V * schedule(ratio)) clamped to [1, unknown - 1];
  temperature *= (1 - ratio) (compounding); confidence = log p(sampled) + temperature * Gumbel,
  known +inf; positions with confidence below the mask_len-th smallest are masked again.
Returns the last step's sampled codes [B, V] (as the release does).

Noise convention: row r at step s uses k = fold_in(row_key[r], s); k_tok, k_conf = split(k);
token Gumbel from uniform(k_tok, [V, C]), confidence Gumbel from uniform(k_conf, [V]), both
-log(-log(clip(u, 1e-20))) clipped like the release.

`prefix_cache` (approximation, off by default): the rows' keys/values are recomputed by a full
forward only every `refresh_every` steps; between refreshes only the image span (plus <|eoi|>) is
recomputed against the cached text-prefix keys/values, which are stale because the text tokens
attend to the image tokens. Nothing but layer 0's prefix K/V is exact across steps, and that is
too little to be worth a special path; the exact mode's saving is the head: logits are computed
only at the image positions and image columns.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from mmada_jax.sampling.logits import as_logits
from mmada_jax.sampling.schedules import (annealed_temperatures, get_mask_schedule,
                                          mask_len_table)
from mmada_jax.sampling.text import row_keys_for


@dataclasses.dataclass(frozen=True)
class ImageSamplerConfig:
    """Release defaults: 15 steps, guidance 3.5, cosine schedule, temperature 1."""
    steps: int = 15
    guidance_scale: float = 3.5
    temperature: float = 1.0
    token_temperature: float = 1.0
    schedule: str = "cosine"
    prefix_cache: bool = False
    refresh_every: int = 5

    @property
    def exact(self) -> bool:
        return not self.prefix_cache

    def validate(self) -> "ImageSamplerConfig":
        if self.steps < 1:
            raise ValueError(f"ImageSamplerConfig.steps={self.steps} must be >= 1")
        if self.guidance_scale < 0 or self.temperature < 0 or self.token_temperature < 0:
            raise ValueError("ImageSamplerConfig: guidance_scale and temperatures must be >= 0")
        if self.refresh_every < 1:
            raise ValueError(f"ImageSamplerConfig.refresh_every={self.refresh_every} must be >= 1")
        get_mask_schedule(self.schedule)
        return self


class ImageIds(NamedTuple):
    mask: int
    offset: int
    codebook: int


def image_ids(layout) -> ImageIds:
    return ImageIds(int(layout.mask), int(layout.image_offset), int(layout.codebook_size))


def gumbel(u):
    """The release's Gumbel from uniforms: -log(-log u) with logs clamped at 1e-20."""
    return -jnp.log(jnp.maximum(-jnp.log(jnp.maximum(u, 1e-20)), 1e-20))


def image_step_noise(row_keys, s, v: int, c: int):
    """(token uniforms [B, V, C], confidence uniforms [B, V]) for step s."""
    def one(k):
        kt, kc = jax.random.split(jax.random.fold_in(k, s))
        return jax.random.uniform(kt, (v, c)), jax.random.uniform(kc, (v,))
    return jax.vmap(one)(row_keys)


def image_loop(lg, tokens, key_mask, uncond_tokens, uncond_key_mask, row_keys,
               cfg: ImageSamplerConfig, ids: ImageIds, image_start: int, num_image_tokens: int):
    """The pure sampler. Returns codes int32 [B, V]."""
    b, l = tokens.shape
    v, c, g = num_image_tokens, ids.codebook, cfg.guidance_scale
    cols = (ids.offset, ids.offset + c)
    mask_lens = jnp.asarray(mask_len_table(cfg.schedule, cfg.steps, v))
    temps = jnp.asarray(annealed_temperatures(cfg.temperature, cfg.steps))
    use_cfg = g > 0
    win = l - image_start  # image span + <|eoi|> (+ any right pads): recomputed with the cache

    def rows(x):
        if not use_cfg:
            return x, key_mask
        pre = jnp.arange(l)[None, :] < image_start
        un = jnp.where(pre, uncond_tokens, x)
        return jnp.concatenate([x, un]), jnp.concatenate([key_mask, uncond_key_mask])

    def logits_of(x, kv, refresh):
        r, km = rows(x)
        if not cfg.prefix_cache:
            return lg.window(r, km, image_start, v, cols), kv
        def full(_):
            return lg.prefill(r, km, image_start, v, cols)
        def cached(kv):
            return lg.cached_window(kv, r, km, image_start, win, cols, out_size=v), kv
        return lax.cond(refresh, full, cached, kv)

    def body(s, carry):
        x, _, kv = carry
        logits, kv = logits_of(x, kv, s % cfg.refresh_every == 0)
        if use_cfg:
            logits = (1.0 + g) * logits[:b] - g * logits[b:]
        u_tok, u_conf = image_step_noise(row_keys, s, v, c)
        span = lax.dynamic_slice_in_dim(x, image_start, v, 1)
        unknown = span == ids.mask
        if cfg.token_temperature > 0:
            sampled = jnp.argmax(logits / cfg.token_temperature + gumbel(u_tok), axis=-1)
        else:
            sampled = jnp.argmax(logits, axis=-1)
        sampled = jnp.where(unknown, sampled.astype(jnp.int32), span - ids.offset)
        probs = jax.nn.softmax(logits, axis=-1)
        p_sel = jnp.take_along_axis(probs, sampled[..., None], axis=-1)[..., 0]
        conf = jnp.log(jnp.maximum(p_sel, 1e-20)) + temps[s] * gumbel(u_conf)
        conf = jnp.where(unknown, conf, jnp.inf)
        n_unknown = jnp.sum(unknown, axis=-1, keepdims=True)
        mask_len = jnp.maximum(1, jnp.minimum(n_unknown - 1, mask_lens[s]))
        cut = jnp.take_along_axis(jnp.sort(conf, axis=-1), mask_len, axis=-1)
        remask = conf < cut
        span = jnp.where(remask, ids.mask, sampled + ids.offset)
        return lax.dynamic_update_slice_in_dim(x, span, image_start, 1), sampled, kv

    kv0 = None
    if cfg.prefix_cache:
        r, km = rows(tokens)
        kv0 = jax.eval_shape(lambda: lg.prefill(r, km, image_start, v, cols)[1])
        kv0 = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), kv0)
    init = (tokens.astype(jnp.int32), jnp.zeros((b, v), jnp.int32), kv0)
    _, sampled, _ = lax.fori_loop(0, cfg.steps, body, init)
    return sampled


_jit_image_loop = jax.jit(image_loop, static_argnames=("cfg", "ids", "image_start",
                                                        "num_image_tokens"))


def generate_image(logits_fn, tokens, key_mask, uncond_tokens=None, uncond_key_mask=None,
                   key=None, cfg: ImageSamplerConfig = ImageSamplerConfig(), layout=None, *,
                   image_start: int, num_image_tokens: int,
                   ids: Optional[ImageIds] = None):
    """Sample image codes [B, V] for t2i rows. `uncond_*` (one row or B rows) are needed when
    guidance_scale > 0. `logits_fn` should be `make_logits_fn(model, params,
    positions='absolute')` (t2i rows are trained with absolute positions)."""
    cfg.validate()
    ids = ids or image_ids(layout)
    lg = as_logits(logits_fn)
    if cfg.prefix_cache and not lg.supports_cache:
        raise ValueError("prefix_cache needs a model-aware logits function (make_logits_fn)")
    tokens = jnp.asarray(tokens, jnp.int32)
    b, l = tokens.shape
    if image_start + num_image_tokens > l:
        raise ValueError(f"image span [{image_start}, {image_start + num_image_tokens}) does not "
                         f"fit rows of length {l}")
    km = jnp.ones((b, l), bool) if key_mask is None else jnp.asarray(key_mask, bool)
    if cfg.guidance_scale > 0:
        if uncond_tokens is None:
            raise ValueError("guidance_scale > 0 needs uncond_tokens (the empty-caption prompt)")
        un = jnp.broadcast_to(jnp.asarray(uncond_tokens, jnp.int32), (b, l))
        ukm = jnp.broadcast_to(jnp.ones((l,), bool) if uncond_key_mask is None
                               else jnp.asarray(uncond_key_mask, bool), (b, l))
    else:
        un, ukm = tokens, km
    key = jax.random.key(0) if key is None else key
    return _jit_image_loop(lg, tokens, km, un, ukm, row_keys_for(key, b), cfg=cfg, ids=ids,
                           image_start=int(image_start), num_image_tokens=int(num_image_tokens))


def codes_to_grid(codes, height: Optional[int] = None):
    """[B, V] -> [B, h, w] (square unless height is given)."""
    codes = np.asarray(codes)
    v = codes.shape[1]
    h = height or int(round(v ** 0.5))
    if v % h:
        raise ValueError(f"{v} image tokens do not form a grid of height {h}")
    return codes.reshape(codes.shape[0], h, v // h)
