"""The MMaDA backbone (LLaDA-8B with a multimodal vocabulary) in Flax Linen.

    n = attn_norm(x);  h = x + attn_out(attention(rope(q(n)), rope(k(n)), v(n)))
    m = ff_norm(h);    y = h + ff_out(silu(ff_proj(m)) * up_proj(m))
    logits = ff_out(ln_f(y))                       (untied head, no biases, bidirectional)

Submodule names mirror the release's `model.transformer.*` keys (docs/CONTRACTS.md); layers are
stacked with `nn.scan` under `blocks` (axis 0) when `scan_layers`, else named `blocks_{i}`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax.ad_checkpoint import checkpoint_name

from mmada_jax.model.attention import attention
from mmada_jax.model.layers import (Embed, RMSNorm, apply_rope, dense, dtype_of, rope_tables,
                                    swiglu_fn)
from mmada_jax.model.remat import remat_policy


def _constrain(x, names):
    return nn.with_logical_constraint(x, names)


class Block(nn.Module):
    """One pre-norm transformer block. x [B, L, D] -> [B, L, D]."""
    cfg: Any

    def setup(self):
        c = self.cfg
        dt, pdt = dtype_of(c.dtype), dtype_of(c.param_dtype)
        hd = c.head_dim or c.d_model // c.n_heads
        self.head_dim = hd
        self.attn_norm = RMSNorm(c.norm_eps, dt, pdt)
        self.ff_norm = RMSNorm(c.norm_eps, dt, pdt)
        self.q_proj = dense(c.n_heads * hd, ("embed", "heads"), "q_proj", dt, pdt, c.init_std)
        self.k_proj = dense(c.n_kv_heads * hd, ("embed", "heads"), "k_proj", dt, pdt, c.init_std)
        self.v_proj = dense(c.n_kv_heads * hd, ("embed", "heads"), "v_proj", dt, pdt, c.init_std)
        self.attn_out = dense(c.d_model, ("heads", "embed"), "attn_out", dt, pdt, c.init_std)
        self.ff_proj = dense(c.mlp_dim, ("embed", "mlp"), "ff_proj", dt, pdt, c.init_std)
        self.up_proj = dense(c.mlp_dim, ("embed", "mlp"), "up_proj", dt, pdt, c.init_std)
        self.ff_out = dense(c.d_model, ("mlp", "embed"), "ff_out", dt, pdt, c.init_std)

    def qkv(self, x, cos, sin):
        """Normalized, projected and rotated q, k, v, each [B, L, H, Dh]."""
        c, b, l = self.cfg, x.shape[0], x.shape[1]
        n = self.attn_norm(x)
        q = self.q_proj(n).reshape(b, l, c.n_heads, self.head_dim)
        k = self.k_proj(n).reshape(b, l, c.n_kv_heads, self.head_dim)
        v = self.v_proj(n).reshape(b, l, c.n_kv_heads, self.head_dim)
        names = ("activation_batch", "activation_length", "activation_heads", "activation_kv")
        q = _constrain(apply_rope(q, cos, sin), names)
        k = _constrain(apply_rope(k, cos, sin), names)
        v = _constrain(v, names)
        q = checkpoint_name(q, "query")
        k = checkpoint_name(k, "key")
        v = checkpoint_name(v, "value")
        return q, k, v

    def attend(self, x, q, k, v, key_mask, segment_ids, kv_segment_ids=None):
        """Residual attention update given q [B, Lq, H, Dh] and k, v [B, Lk, Hkv, Dh]."""
        c, b, l = self.cfg, x.shape[0], x.shape[1]
        rep = c.n_heads // c.n_kv_heads
        if rep > 1:
            k, v = jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2)
        o = attention(q, k, v, key_mask=key_mask, segment_ids=segment_ids,
                      kv_segment_ids=kv_segment_ids, impl=c.attention_impl)
        o = checkpoint_name(o, "attn_out")
        h = x + self.attn_out(o.reshape(b, l, c.n_heads * self.head_dim))
        return _constrain(h, ("activation_batch", "activation_length", "activation_embed"))

    def mlp(self, h):
        m = self.ff_norm(h)
        g = _constrain(self.ff_proj(m), ("activation_batch", "activation_length", "activation_mlp"))
        u = _constrain(self.up_proj(m), ("activation_batch", "activation_length", "activation_mlp"))
        y = h + self.ff_out(swiglu_fn(self.cfg.get("swiglu_grad", "auto"))(g, u))
        return _constrain(y, ("activation_batch", "activation_length", "activation_embed"))

    def __call__(self, x, cos, sin, key_mask, segment_ids):
        q, k, v = self.qkv(x, cos, sin)
        return self.mlp(self.attend(x, q, k, v, key_mask, segment_ids))


class _ScanBlock(Block):
    """Block with the (carry, *xs) -> (carry, y) signature nn.scan needs."""

    def __call__(self, x, cos, sin, key_mask, segment_ids):
        return super().__call__(x, cos, sin, key_mask, segment_ids), None


class MMaDAModel(nn.Module):
    """tokens [B, L] int32 -> logits [B, L, V] (`cfg.logits_dtype`).

    key_mask [B, L] bool (False = padding key), segment_ids [B, L] int (packed rows) and
    positions [B, L] int (default 0..L-1 over the whole row) are optional.
    """
    cfg: Any

    def setup(self):
        c = self.cfg
        dt, pdt = dtype_of(c.dtype), dtype_of(c.param_dtype)
        self.wte = Embed(c.vocab_size, c.d_model, dt, pdt, c.init_std)
        if c.get("abs_pos_embed", False):
            # learned absolute positions [max_seq_len, D] added to the token embeddings (off in
            # the release's architecture): a small, briefly trained model finds a fixed image
            # span's cells without first deriving absolute offsets from RoPE
            self.wpe = Embed(c.max_seq_len, c.d_model, dt, pdt, c.init_std, ("length", "embed"))
        use_remat, policy = remat_policy(c.remat)
        if c.scan_layers:
            blk = _ScanBlock
            if use_remat:
                blk = nn.remat(blk, policy=policy, prevent_cse=False)
            self.blocks = nn.scan(
                blk, variable_axes={"params": 0}, split_rngs={"params": True},
                in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                length=c.n_layers, metadata_params={nn.PARTITION_NAME: "layers"},
            )(c, name="blocks")
        else:
            blk = nn.remat(Block, policy=policy) if use_remat else Block
            self.block_list = [blk(c, name=f"blocks_{i}") for i in range(c.n_layers)]
        self.ln_f = RMSNorm(c.norm_eps, dt, pdt)
        self.ff_out = dense(c.vocab_size, ("embed", "vocab"), "ff_out", dt, pdt, c.init_std)

    def embed(self, tokens, positions=None):
        """Token embeddings [B, L, D] and RoPE tables."""
        c = self.cfg
        x = self.wte(tokens)
        x = _constrain(x, ("activation_batch", "activation_length", "activation_embed"))
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        if c.get("abs_pos_embed", False):
            x = x + self.wpe(jnp.clip(positions, 0, c.max_seq_len - 1))
        cos, sin = rope_tables(positions, c.head_dim or c.d_model // c.n_heads, c.rope_theta)
        return x, cos, sin

    def head(self, y):
        """Final norm and the untied LM head: [B, L, D] -> [B, L, V]."""
        logits = self.ff_out(self.ln_f(y))
        logits = _constrain(logits, ("activation_batch", "activation_length", "activation_vocab"))
        return logits.astype(dtype_of(self.cfg.logits_dtype))

    def hidden(self, tokens, key_mask=None, segment_ids=None, positions=None):
        """Final hidden states [B, L, D] before ln_f."""
        x, cos, sin = self.embed(tokens, positions)
        if self.cfg.scan_layers:
            x, _ = self.blocks(x, cos, sin, key_mask, segment_ids)
        else:
            for blk in self.block_list:
                x = blk(x, cos, sin, key_mask, segment_ids)
        return x

    def __call__(self, tokens, key_mask=None, segment_ids=None, positions=None):
        return self.head(self.hidden(tokens, key_mask, segment_ids, positions))


def build_model(model_cfg, layout=None) -> MMaDAModel:
    """Resolve `vocab_size` 0 from the token layout and freeze the config into the module."""
    import ml_collections
    c = ml_collections.ConfigDict(model_cfg.to_dict() if hasattr(model_cfg, "to_dict")
                                  else dict(model_cfg))
    if not c.vocab_size:
        if layout is None:
            raise ValueError("config.model.vocab_size is 0 and no token layout was given")
        c.vocab_size = layout.model_vocab_size
    elif layout is not None and c.vocab_size < layout.image_offset + layout.codebook_size:
        raise ValueError(f"config.model.vocab_size={c.vocab_size} is smaller than the token "
                         f"layout needs ({layout.image_offset + layout.codebook_size})")
    return MMaDAModel(ml_collections.FrozenConfigDict(c))


def param_count(params) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(params))


def unstack_layers(model: MMaDAModel, params):
    """(model, params) with per-layer weight arrays (`blocks_{i}`) instead of the stacked
    `blocks` of nn.scan. On GPU, scanning over stacked weights copies each layer's slice every
    call; inference (and small-layer-count training) runs faster unrolled (BENCHMARKS.md)."""
    import ml_collections
    if not model.cfg.scan_layers:
        return model, params
    c = ml_collections.ConfigDict(model.cfg.to_dict() if hasattr(model.cfg, "to_dict")
                                  else dict(model.cfg))
    c.scan_layers = False
    out = {k: v for k, v in params.items() if k != "blocks"}
    for i in range(model.cfg.n_layers):
        out[f"blocks_{i}"] = jax.tree_util.tree_map(lambda a, i=i: a[i], params["blocks"])
    return MMaDAModel(ml_collections.FrozenConfigDict(c)), out


def stack_layers(model: MMaDAModel, params):
    """Inverse of `unstack_layers`."""
    import ml_collections
    if model.cfg.scan_layers:
        return model, params
    c = ml_collections.ConfigDict(model.cfg.to_dict() if hasattr(model.cfg, "to_dict")
                                  else dict(model.cfg))
    c.scan_layers = True
    n = model.cfg.n_layers
    out = {k: v for k, v in params.items() if not k.startswith("blocks_")}
    out["blocks"] = jax.tree_util.tree_map(lambda *a: jnp.stack(a),
                                           *[params[f"blocks_{i}"] for i in range(n)])
    return MMaDAModel(ml_collections.FrozenConfigDict(c)), out
