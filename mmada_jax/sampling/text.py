"""LLaDA's semi-autoregressive text sampler (spec section 4) as one compiled loop.

    out = generate_text(logits_fn, prompt [B, P], prompt_mask [B, P], key, TextSamplerConfig(...),
                        layout)                      # out.tokens [B, P + gen_length], out.nfe

x = prompt followed by gen_length masks, split into blocks of block_length, each given
steps / num_blocks steps. Each step, on the active block only:
  x0 = argmax(logits + tau * Gumbel)   (tau = 0: argmax; the mask id is never proposed)
  confidence = softmax(logits)[x0] ('low_confidence') or U(0, 1) ('random'), masked positions only
  commit the top-k confident positions, k = the release's transfer count for this step
  (or, with `threshold`, every position above it and at least the most confident one).
Positions past the block are never touched (the release gives them confidence -inf), committed
tokens are never remasked. CFG: the unconditional row is the prompt replaced by masks (pads too,
as in the release) with the same key mask; logits = un + (cfg + 1) * (cond - un).

Noise convention (what tests reproduce): row r at step t (counting model calls from 0) uses
key_rt = fold_in(row_key[r], t); kg, kr = split(key_rt); Gumbel u = uniform(kg, [S, V],
minval=tiny); 'random' confidence = uniform(kr, [S]). A single key is split into B row keys.
The release's `exp(logits) / (-log u)^tau` in float64 equals `logits - tau * log(-log u)` under
argmax; we use the latter in float32 (no overflow).

Speed switches (approximations, all off by default):
  threshold   parallel decoding (Fast-dLLM): steps per block become data dependent.
  cache       'prefix': K/V of the prompt and finished blocks reused within a block, the block and
              everything after it recomputed; 'dual': K/V of every position outside the active
              block reused, only the block recomputed. Caches are refreshed by a full forward at
              every block start (whose logits also make that block's first step).
  stop_at_eos after a block whose last token is eos in every row, the rest is filled with eos.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import flax
import jax
import jax.numpy as jnp
from jax import lax

from mmada_jax.sampling.logits import ModelLogits, as_logits
from mmada_jax.sampling.schedules import transfer_counts

CACHE_MODES = ("none", "prefix", "dual")
_TINY = float(jnp.finfo(jnp.float32).tiny)


@dataclasses.dataclass(frozen=True)
class TextSamplerConfig:
    """Settings of the LLaDA sampler (release defaults for GSM8K-style eval)."""
    gen_length: int = 256
    steps: int = 256
    block_length: int = 32
    temperature: float = 0.0
    remasking: str = "low_confidence"
    cfg_scale: float = 0.0
    threshold: Optional[float] = None
    cache: str = "none"
    stop_at_eos: bool = False

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    @property
    def exact(self) -> bool:
        return self.threshold is None and self.cache == "none" and not self.stop_at_eos

    def validate(self) -> "TextSamplerConfig":
        if self.gen_length <= 0 or self.block_length <= 0 or self.steps <= 0:
            raise ValueError(f"TextSamplerConfig: gen_length={self.gen_length}, block_length="
                             f"{self.block_length} and steps={self.steps} must be positive")
        if self.gen_length % self.block_length:
            raise ValueError(f"TextSamplerConfig: gen_length={self.gen_length} is not a multiple "
                             f"of block_length={self.block_length}")
        if self.steps % self.num_blocks:
            raise ValueError(f"TextSamplerConfig: steps={self.steps} is not a multiple of the "
                             f"number of blocks {self.num_blocks} (gen_length / block_length)")
        if self.remasking not in _REMASKING:
            raise ValueError(f"TextSamplerConfig.remasking={self.remasking!r}; known: "
                             f"{sorted(_REMASKING)}")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"TextSamplerConfig.cache={self.cache!r}; use one of {CACHE_MODES}")
        if self.temperature < 0 or self.cfg_scale < 0:
            raise ValueError("TextSamplerConfig: temperature and cfg_scale must be >= 0")
        return self


class TextIds(NamedTuple):
    mask: int
    eos: int


def text_ids(layout) -> TextIds:
    return TextIds(int(layout.mask), int(layout.eos))


@flax.struct.dataclass
class TextOutput:
    tokens: jax.Array   # int32 [B, P + gen_length]
    nfe: jax.Array      # int32 []: model calls (a CFG call counts once)


# ------------------------------------------------------------------ remasking strategies
_REMASKING: dict[str, Callable] = {}


def register_remasking(name: str):
    """Decorator: `fn(logits [B,S,V] f32, x0 [B,S], key_r [B] keys) -> confidence [B,S]`."""
    def deco(fn):
        _REMASKING[name] = fn
        return fn
    return deco


@register_remasking("low_confidence")
def low_confidence(logits, x0, keys):
    p = jax.nn.softmax(logits, axis=-1)
    return jnp.take_along_axis(p, x0[..., None], axis=-1)[..., 0]


@register_remasking("random")
def random_confidence(logits, x0, keys):
    return jax.vmap(lambda k: jax.random.uniform(k, x0.shape[1:]))(keys)


# ------------------------------------------------------------------ one step's pieces
def step_keys(row_keys, t):
    """Per-row (gumbel, remask) keys for step t: each [B]."""
    ks = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, t)))(row_keys)
    return ks[:, 0], ks[:, 1]


def propose(logits, row_keys, t, cfg: TextSamplerConfig, ids: TextIds):
    """x0 [B, S] and its confidence [B, S] from logits [B, S, V] (float32)."""
    kg, kr = step_keys(row_keys, t)
    scores = logits.at[..., ids.mask].set(-jnp.inf)
    if cfg.temperature > 0:
        u = jax.vmap(lambda k: jax.random.uniform(k, logits.shape[1:], jnp.float32,
                                                  minval=_TINY))(kg)
        scores = scores - cfg.temperature * jnp.log(-jnp.log(u))
    x0 = jnp.argmax(scores, axis=-1).astype(jnp.int32)
    return x0, _REMASKING[cfg.remasking](logits, x0, kr)


def select_topk(conf, masked, k):
    """bool [B, S]: the k[b] most confident masked positions (ties: lower index first)."""
    c = jnp.where(masked, conf, -jnp.inf)
    order = jnp.argsort(-c, axis=-1, stable=True)
    rank = jnp.argsort(order, axis=-1)
    return masked & (rank < k[:, None])


def select_threshold(conf, masked, threshold: float):
    """bool [B, S]: masked positions with confidence >= threshold, plus the most confident one."""
    c = jnp.where(masked, conf, -jnp.inf)
    top = jax.nn.one_hot(jnp.argmax(c, axis=-1), c.shape[-1], dtype=bool)
    return masked & ((c >= threshold) | top)


def guided(logits, b: int, cfg_scale: float):
    """CFG over stacked [cond; uncond] rows: un + (cfg + 1) * (cond - un)."""
    if cfg_scale <= 0:
        return logits
    cond, un = logits[:b], logits[b:]
    return un + (cfg_scale + 1.0) * (cond - un)


# ------------------------------------------------------------------ the loop
def _rows(x, key_mask, p: int, cfg, ids):
    """Model rows: x, plus the unconditional rows (prompt -> masks) when CFG is on."""
    if cfg.cfg_scale <= 0:
        return x, key_mask
    un = jnp.where(jnp.arange(x.shape[1])[None, :] < p, ids.mask, x)
    return jnp.concatenate([x, un]), jnp.concatenate([key_mask, key_mask])


def _block(lg, x, key_mask, row_keys, t, nfe, start, p: int, cfg, ids):
    """Decode the block at `start` (maybe traced; static under 'prefix'). Returns x, t, nfe."""
    s, b, spb = cfg.block_length, x.shape[0], cfg.steps_per_block
    counts = transfer_counts(jnp.sum(lax.dynamic_slice_in_dim(x, start, s, 1) == ids.mask, 1),
                             spb)
    win = x.shape[1] - start if cfg.cache == "prefix" else s  # static in both modes

    def logits_at(x, kv):
        rows, km = _rows(x, key_mask, p, cfg, ids)
        if kv is None:
            return lg.window(rows, km, start, s), None
        return lg.cached_window(kv, rows, km, start, win, out_size=s), kv

    def commit(x, logits, t, i):
        blk = lax.dynamic_slice_in_dim(x, start, s, 1)
        masked = blk == ids.mask
        x0, conf = propose(guided(logits, b, cfg.cfg_scale), row_keys, t, cfg, ids)
        if cfg.threshold is None:
            sel = select_topk(conf, masked, counts[:, jnp.minimum(i, spb - 1)])
        else:
            sel = select_threshold(conf, masked, cfg.threshold)
        return lax.dynamic_update_slice_in_dim(x, jnp.where(sel, x0, blk), start, 1)

    kv, i0 = None, 0
    if cfg.cache != "none":  # refresh: a full forward makes the caches and the first step
        rows, km = _rows(x, key_mask, p, cfg, ids)
        logits, kv = lg.prefill(rows, km, start, s)
        x, t, nfe, i0 = commit(x, logits, t, 0), t + 1, nfe + 1, 1

    def body(carry):
        x, t, nfe, i = carry
        logits, _ = logits_at(x, kv)
        return commit(x, logits, t, i), t + 1, nfe + 1, i + 1

    if cfg.threshold is None:
        x, t, nfe, _ = lax.fori_loop(i0, spb, lambda i, c: body(c), (x, t, nfe, jnp.int32(i0)))
    else:
        def cond(carry):
            blk = lax.dynamic_slice_in_dim(carry[0], start, s, 1)
            return jnp.any(blk == ids.mask)
        x, t, nfe, _ = lax.while_loop(cond, body, (x, t, nfe, jnp.int32(i0)))
    return x, t, nfe


def _block_done(x, start, cfg, ids):
    return jnp.all(x[:, start + cfg.block_length - 1] == ids.eos) if isinstance(start, int) \
        else jnp.all(lax.dynamic_index_in_dim(x, start + cfg.block_length - 1, 1, False)
                     == ids.eos)


def text_loop(lg, prompt, prompt_mask, row_keys, cfg: TextSamplerConfig, ids: TextIds):
    """The pure sampler: everything static but the arrays. Returns TextOutput."""
    b, p = prompt.shape
    x = jnp.concatenate([prompt.astype(jnp.int32),
                         jnp.full((b, cfg.gen_length), ids.mask, jnp.int32)], 1)
    key_mask = jnp.concatenate([prompt_mask.astype(bool),
                                jnp.ones((b, cfg.gen_length), bool)], 1)
    t, nfe, done = jnp.int32(0), jnp.int32(0), jnp.bool_(False)

    if cfg.cache == "prefix":  # window sizes differ per block: blocks unrolled, steps looped
        for blk in range(cfg.num_blocks):
            start = p + blk * cfg.block_length
            run = lambda c, start=start: (*_block(lg, c[0], key_mask, row_keys, c[1], c[2],
                                                  start, p, cfg, ids), c[3])
            x, t, nfe, done = lax.cond(done, lambda c: c, run, (x, t, nfe, done))
            if cfg.stop_at_eos:
                done = _block_done(x, start, cfg, ids)
    else:
        def cond(c):
            return (c[0] < cfg.num_blocks) & ~c[4]

        def body(c):
            blk, x, t, nfe, _ = c
            start = p + blk * cfg.block_length
            x, t, nfe = _block(lg, x, key_mask, row_keys, t, nfe, start, p, cfg, ids)
            done = _block_done(x, start, cfg, ids) if cfg.stop_at_eos else jnp.bool_(False)
            return blk + 1, x, t, nfe, done
        _, x, t, nfe, _ = lax.while_loop(cond, body, (jnp.int32(0), x, t, nfe, done))
    if cfg.stop_at_eos:
        gen = jnp.arange(x.shape[1])[None, :] >= p
        x = jnp.where(gen & (x == ids.mask), ids.eos, x)
    return TextOutput(x, nfe)


_jit_text_loop = jax.jit(text_loop, static_argnames=("cfg", "ids"))


def row_keys_for(key, batch: int):
    """A single key -> `batch` row keys; an array of `batch` keys passes through."""
    if key.ndim == 0:
        return jax.random.split(key, batch)
    if key.shape[0] != batch:
        raise ValueError(f"got {key.shape[0]} row keys for a batch of {batch}")
    return key


def check_length(prompt_len: int, gen_length: int, lg, what: str = "prompt") -> None:
    """Raise if prompt + generation exceeds the model's max_seq_len."""
    if isinstance(lg, ModelLogits):
        limit = int(lg.model.cfg.max_seq_len)
        if prompt_len + gen_length > limit:
            raise ValueError(f"{what} of {prompt_len} tokens + gen_length {gen_length} exceeds the "
                             f"model's max_seq_len {limit}: the {what} may have at most "
                             f"{limit - gen_length} tokens")


def generate_text(logits_fn, prompt, prompt_mask=None, key=None, cfg=TextSamplerConfig(),
                  layout=None, ids: Optional[TextIds] = None) -> TextOutput:
    """Sample continuations of left-padded prompts [B, P] (prompt_mask False on pads).

    `logits_fn`: `make_logits_fn(model, params)` (needed for the caches) or any
    `fn(tokens, key_mask) -> logits [B, L, V]`. `key`: one PRNG key or B row keys (needed when
    temperature > 0 or remasking is 'random'). Returns TextOutput(tokens [B, P + gen], nfe).
    """
    cfg.validate()
    ids = ids or text_ids(layout)
    lg = as_logits(logits_fn)
    if cfg.cache != "none" and not lg.supports_cache:
        raise ValueError(f"cache={cfg.cache!r} needs a model-aware logits function "
                         "(mmada_jax.sampling.make_logits_fn(model, params)), not a plain callable")
    prompt = jnp.asarray(prompt, jnp.int32)
    if prompt.ndim != 2:
        raise ValueError(f"prompt must be [B, P] token ids, got shape {prompt.shape}")
    check_length(prompt.shape[1], cfg.gen_length, lg)
    pm = jnp.ones(prompt.shape, bool) if prompt_mask is None else jnp.asarray(prompt_mask, bool)
    key = jax.random.key(0) if key is None else key
    return _jit_text_loop(lg, prompt, pm, row_keys_for(key, prompt.shape[0]), cfg=cfg, ids=ids)
