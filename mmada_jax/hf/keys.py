"""The released MMaDA / LLaDA checkpoint naming and config.json, generated for any dimensions.

Release keys (spec section 1), prefix `model.transformer.`; PyTorch Linear weights are [out, in]:
    wte.weight [V, D]                      <-> wte/embedding [V, D]            (no transpose)
    ln_f.weight [D]                        <-> ln_f/scale [D]
    ff_out.weight [V, D]  (the LM head)    <-> ff_out/kernel [D, V]            (transposed)
    blocks.{i}.{attn_norm,ff_norm}.weight  <-> blocks/{..}/scale [N, D]        (row i)
    blocks.{i}.{q,k,v}_proj.weight [H*Dh, D] <-> blocks/{..}/kernel [N, D, H*Dh]
    blocks.{i}.attn_out.weight [D, H*Dh]   <-> blocks/attn_out/kernel [N, H*Dh, D]
    blocks.{i}.{ff_proj,up_proj}.weight [F, D] <-> blocks/{..}/kernel [N, D, F]  (ff_proj = gate)
    blocks.{i}.ff_out.weight [D, F]        <-> blocks/ff_out/kernel [N, F, D]   (down proj.)
With `scan_layers=False` the Flax side is `blocks_{i}/...` without the leading N axis.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

PREFIX = "model.transformer."
BLOCK_NORMS = ("attn_norm", "ff_norm")
BLOCK_LINEARS = ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One Flax parameter and the release tensor(s) it comes from.

    path: Flax path, e.g. ('blocks', 'q_proj', 'kernel').
    keys: release key per layer (stacked) or a single key.
    stacked: the Flax array has a leading layer axis (one release tensor per layer).
    transpose: 2-D PyTorch weight [out, in] vs Flax kernel [in, out].
    torch_shape: shape of each release tensor.
    """
    path: tuple
    keys: tuple
    stacked: bool
    transpose: bool
    torch_shape: tuple

    @property
    def flax_shape(self) -> tuple:
        one = tuple(reversed(self.torch_shape)) if self.transpose else tuple(self.torch_shape)
        return ((len(self.keys),) + one) if self.stacked else one


def _dims(m):
    hd = m.head_dim or m.d_model // m.n_heads
    return int(m.d_model), int(m.n_layers), int(m.n_heads) * hd, int(m.n_kv_heads) * hd, \
        int(m.mlp_dim), int(m.vocab_size)


def block_torch_shapes(m) -> dict[str, tuple]:
    d, _, qd, kvd, f, _ = _dims(m)
    return {"attn_norm": (d,), "ff_norm": (d,), "q_proj": (qd, d), "k_proj": (kvd, d),
            "v_proj": (kvd, d), "attn_out": (d, qd), "ff_proj": (f, d), "up_proj": (f, d),
            "ff_out": (d, f)}


def entries(m, prefix: str = PREFIX) -> list[Entry]:
    """Every parameter of a model config `m` (needs a resolved vocab_size) in release order."""
    d, n, _, _, _, v = _dims(m)
    if not v:
        raise ValueError("model config has vocab_size 0; resolve it from the token layout first")
    if m.get("abs_pos_embed", False):
        raise ValueError("model config has abs_pos_embed=True: the release's checkpoint layout "
                         "has no absolute position table (wpe), so this model cannot be "
                         "imported from or exported to it")
    out = [Entry(("wte", "embedding"), (prefix + "wte.weight",), False, False, (v, d))]
    shapes = block_torch_shapes(m)
    names = [(nm, "scale") for nm in BLOCK_NORMS] + [(nm, "kernel") for nm in BLOCK_LINEARS]
    if m.scan_layers:
        for nm, leaf in names:
            keys = tuple(f"{prefix}blocks.{i}.{nm}.weight" for i in range(n))
            out.append(Entry(("blocks", nm, leaf), keys, True, leaf == "kernel", shapes[nm]))
    else:
        for i in range(n):
            for nm, leaf in names:
                out.append(Entry((f"blocks_{i}", nm, leaf), (f"{prefix}blocks.{i}.{nm}.weight",),
                                 False, leaf == "kernel", shapes[nm]))
    out.append(Entry(("ln_f", "scale"), (prefix + "ln_f.weight",), False, False, (d,)))
    out.append(Entry(("ff_out", "kernel"), (prefix + "ff_out.weight",), False, True, (v, d)))
    return out


def release_shapes(m, prefix: str = PREFIX) -> dict[str, tuple]:
    """{release key: PyTorch shape} for a model config (the spec's list, at any dimensions)."""
    return {k: e.torch_shape for e in entries(m, prefix) for k in e.keys}


# ------------------------------------------------------------------------- config.json
# Fields of LLaDA's config (configuration_llada.LLaDAConfig) as the MMaDA release writes them.
_FIXED = dict(
    activation_type="silu", alibi=False, alibi_bias_max=8.0, attention_dropout=0.0,
    attention_layer_norm=False, attention_layer_norm_with_affine=True, bias_for_layer_norm=False,
    block_group_size=1, block_type="llama", embedding_dropout=0.0, flash_attention=False,
    include_bias=False, include_qkv_bias=False, init_cutoff_factor=None, init_device="meta",
    init_fn="mitchell", input_emb_norm=False, layer_norm_type="rms", layer_norm_with_affine=True,
    mlp_ratio=4, multi_query_attention=None, precision="amp_bf16", residual_dropout=0.0,
    rope=True, rope_full_precision=True, scale_logits=False, use_cache=False,
    weight_tying=False, tie_word_embeddings=False,
)
# Fields whose value this implementation hard-codes; anything else is refused on import.
_REQUIRED = dict(activation_type="silu", block_type="llama", include_bias=False,
                 include_qkv_bias=False, layer_norm_type="rms", rope=True, weight_tying=False,
                 alibi=False, attention_layer_norm=False, scale_logits=False,
                 input_emb_norm=False)


def hf_config(m, layout=None, torch_dtype: str = "bfloat16", tokens: dict | None = None) -> dict:
    """config.json in the release's layout (MMadaModelLM over LLaDA) for model config `m`.

    `tokens` (this project's `config.tokens` as a dict) is stored under `mmada_jax_tokens` for
    vocabularies other than the release's, so that an import can rebuild the token layout
    (PyTorch's PretrainedConfig keeps unknown fields as plain attributes)."""
    d, n, _, _, f, v = _dims(m)
    c = dict(_FIXED)
    c.update(
        architectures=["MMadaModelLM"], model_type="mmada",
        d_model=d, n_layers=n, n_heads=int(m.n_heads), n_kv_heads=int(m.n_kv_heads),
        mlp_hidden_size=f, max_sequence_length=int(m.max_seq_len), rope_theta=float(m.rope_theta),
        rms_norm_eps=float(m.norm_eps), init_std=float(m.init_std), vocab_size=v,
        embedding_size=v, new_vocab_size=v, torch_dtype=torch_dtype,
    )
    if m.head_dim and m.head_dim != d // m.n_heads:
        c["head_dim"] = int(m.head_dim)  # LLaDA derives it; kept for non-standard widths only
    if layout is not None:
        c.update(mask_token_id=int(layout.mask), eos_token_id=int(layout.eos),
                 pad_token_id=int(layout.eos), codebook_size=int(layout.codebook_size),
                 llm_vocab_size=int(layout.image_offset) if v != 134656 else 126464,
                 num_vq_tokens=256, num_new_special_tokens=0, w_clip_vit=False)
    if tokens is not None and v != 134656:
        c["mmada_jax_tokens"] = dict(tokens)
    return c


def model_overrides_from_hf(hf: dict, source: str = "config.json") -> dict:
    """config.json -> overrides for `config.model_config` (dims); refuses unsupported variants."""
    bad = [f"{k}={hf[k]!r} (need {v!r})" for k, v in _REQUIRED.items()
           if k in hf and hf[k] is not None and hf[k] != v]
    if bad:
        raise ValueError(f"{source}: unsupported model variant: {', '.join(bad)}")
    need = ("d_model", "n_layers", "n_heads")
    missing = [k for k in need if k not in hf]
    if missing:
        raise ValueError(f"{source}: missing fields {missing} (not a LLaDA/MMaDA config?)")
    d, nh = int(hf["d_model"]), int(hf["n_heads"])
    mlp = hf.get("mlp_hidden_size") or int(hf.get("mlp_ratio", 4)) * d
    vocab = int(hf.get("embedding_size") or hf.get("vocab_size"))
    out = dict(d_model=d, n_layers=int(hf["n_layers"]), n_heads=nh,
               n_kv_heads=int(hf.get("n_kv_heads") or nh), mlp_dim=int(mlp), vocab_size=vocab,
               rope_theta=float(hf.get("rope_theta", 10000.0)),
               norm_eps=float(hf.get("rms_norm_eps", 1e-5)),
               max_seq_len=int(hf.get("max_sequence_length", 4096)))
    if hf.get("head_dim"):
        out["head_dim"] = int(hf["head_dim"])
    return out


def preset_for(overrides: dict) -> Optional[str]:
    """The MODEL_PRESETS name whose dimensions equal these overrides, if any."""
    from mmada_jax.config import MODEL_PRESETS
    for name, dims in MODEL_PRESETS.items():
        if all(overrides.get(k) == v for k, v in dims.items() if k != "max_seq_len"):
            return name
    return None
