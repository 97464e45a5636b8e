"""Shared tiny model and plain NumPy reference samplers for tests/test_sampling_*.py.

The references are written straight from the release's loops (spec section 4): one full-sequence
model call per step, NumPy arithmetic, Python loops over blocks, steps, rows and positions.
Random numbers follow the samplers' documented noise convention (drawn here with jax.random).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from mmada_jax.config import model_config
from mmada_jax.model import build_model
from mmada_jax.token_layout import TokenLayout

TINY = np.float32(np.finfo(np.float32).tiny)


@functools.lru_cache(maxsize=None)
def tiny_model(scan_layers: bool = True, sharpen: float = 40.0, abs_pos_embed: bool = False):
    """(model, params, layout): 2 layers, d 64, vocab 384, float32. The head is scaled up so the
    random model makes confident, varied predictions (as a trained one does)."""
    layout = TokenLayout.custom(256, 64)
    model = build_model(model_config("tiny", dtype="float32", scan_layers=scan_layers,
                                     max_seq_len=128, abs_pos_embed=abs_pos_embed), layout)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    params = dict(nn.unbox(params))
    params["ff_out"] = {"kernel": params["ff_out"]["kernel"] * sharpen}
    return model, params, layout


def full_logits_fn(model, params, positions: str):
    """numpy (tokens [B, L], key_mask [B, L]) -> float32 logits [B, L, V]: the plain forward."""
    @jax.jit
    def f(tokens, key_mask):
        pos = None
        if positions == "key_mask":
            pos = jnp.maximum(jnp.cumsum(key_mask.astype(jnp.int32), 1) - 1, 0)
        return model.apply({"params": params}, tokens, key_mask, positions=pos)
    return lambda t, m: np.asarray(f(jnp.asarray(t), jnp.asarray(m)), np.float32)


def softmax64(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def text_noise(row_key, t, s, v):
    """(gumbel uniforms [S, V], random-remask uniforms [S]) of one row at step t."""
    kg, kr = jax.random.split(jax.random.fold_in(row_key, t))
    u = jax.random.uniform(kg, (s, v), jnp.float32, minval=float(TINY))
    return np.asarray(u), np.asarray(jax.random.uniform(kr, (s,)))


def reference_text(logits, prompt, prompt_mask, row_keys, *, gen_length, steps, block_length,
                   temperature=0.0, remasking="low_confidence", cfg_scale=0.0, threshold=None,
                   mask_id, eos_id, stop_at_eos=False, record=None):
    """LLaDA generate, straightforwardly. Returns (tokens [B, P+G], model calls)."""
    prompt = np.asarray(prompt)
    b, p = prompt.shape
    x = np.concatenate([prompt, np.full((b, gen_length), mask_id)], 1).astype(np.int64)
    km = np.concatenate([np.asarray(prompt_mask, bool), np.ones((b, gen_length), bool)], 1)
    nb = gen_length // block_length
    spb = steps // nb
    t = 0
    for blk in range(nb):
        s0, s1 = p + blk * block_length, p + (blk + 1) * block_length
        n_masked = (x[:, s0:s1] == mask_id).sum(1)
        counts = [[n // spb + (1 if i < n % spb else 0) for i in range(spb)] for n in n_masked]
        i = 0
        while (x[:, s0:s1] == mask_id).any() if threshold is not None else i < spb:
            if cfg_scale > 0:
                un = x.copy()
                un[:, :p] = mask_id
                lg = logits(np.concatenate([x, un]), np.concatenate([km, km]))
                cond, unc = lg[:b].astype(np.float64), lg[b:].astype(np.float64)
                lg = unc + (cfg_scale + 1) * (cond - unc)
            else:
                lg = logits(x, km).astype(np.float64)
            new = x.copy()
            for r in range(b):
                u, rr = text_noise(row_keys[r], t, block_length, lg.shape[-1])
                conf = np.full(x.shape[1], -np.inf)
                x0 = x[r].copy()
                for j in range(s0, s1):
                    if x[r, j] != mask_id:
                        continue
                    sc = lg[r, j].copy()
                    sc[mask_id] = -np.inf
                    if temperature > 0:
                        sc = sc - temperature * np.log(-np.log(u[j - s0].astype(np.float64)))
                    x0[j] = int(np.argmax(sc))
                    conf[j] = softmax64(lg[r, j])[x0[j]] if remasking == "low_confidence" \
                        else rr[j - s0]
                order = sorted(range(x.shape[1]), key=lambda j: (-conf[j], j))
                if threshold is None:
                    chosen = [j for j in order[:counts[r][i]] if conf[j] > -np.inf]
                else:
                    chosen = [j for j in order if conf[j] > -np.inf and
                              (j == order[0] or conf[j] >= threshold)]
                for j in chosen:
                    new[r, j] = x0[j]
                if record is not None:
                    record.append((r, len(chosen)))
            x = new
            t += 1
            i += 1
        if stop_at_eos and (x[:, s1 - 1] == eos_id).all():
            x[:, p:][x[:, p:] == mask_id] = eos_id
            break
    return x, t


def image_noise(row_key, s, v, c):
    kt, kc = jax.random.split(jax.random.fold_in(row_key, s))
    return (np.asarray(jax.random.uniform(kt, (v, c))),
            np.asarray(jax.random.uniform(kc, (v,))))


def np_gumbel(u):
    u = np.asarray(u, np.float32)
    return -np.log(np.maximum(-np.log(np.maximum(u, np.float32(1e-20))), np.float32(1e-20)))


def reference_image(logits, tokens, key_mask, uncond_tokens, uncond_key_mask, row_keys, *,
                    steps, guidance_scale, temperature, token_temperature, image_start,
                    num_image_tokens, mask_id, offset, codebook):
    """MMaDA t2i_generate (MaskGIT), straightforwardly, with the prefix cut by text length."""
    x = np.asarray(tokens).astype(np.int64).copy()
    b, l = x.shape
    v, lo, hi = num_image_tokens, image_start, image_start + num_image_tokens
    known = np.where(x[:, lo:hi] == mask_id, -1, x[:, lo:hi] - offset)
    temp = temperature
    sampled = None
    for s in range(steps):
        if guidance_scale > 0:
            un = x.copy()
            un[:, :image_start] = np.asarray(uncond_tokens)[:, :image_start]
            lg = logits(np.concatenate([x, un]), np.concatenate([key_mask, uncond_key_mask]))
            lg = lg[:, lo:hi, offset:offset + codebook]
            lg = (1 + guidance_scale) * lg[:b] - guidance_scale * lg[b:]
        else:
            lg = logits(x, key_mask)[:, lo:hi, offset:offset + codebook]
        lg = lg.astype(np.float32)
        ratio = (s + 1) / steps
        mask_ratio = np.cos(np.float32(ratio) * np.float32(np.pi) * np.float32(0.5))
        base_len = int(np.floor(np.float32(v) * np.float32(mask_ratio)))
        temp = temp * (1.0 - ratio)
        sampled = np.zeros((b, v), np.int64)
        for r in range(b):
            ut, uc = image_noise(row_keys[r], s, v, codebook)
            probs = softmax64(lg[r])
            conf = np.zeros(v, np.float32)
            for j in range(v):
                if known[r, j] >= 0:
                    sampled[r, j] = known[r, j]
                    conf[j] = np.inf
                    continue
                if token_temperature > 0:
                    sampled[r, j] = int(np.argmax(lg[r, j] / token_temperature + np_gumbel(ut[j])))
                else:
                    sampled[r, j] = int(np.argmax(lg[r, j]))
                pj = max(probs[j][sampled[r, j]], 1e-20)
                conf[j] = np.float32(np.log(pj)) + np.float32(temp) * np_gumbel(uc[j])
            unknown = int((known[r] < 0).sum())
            mask_len = max(1, min(unknown - 1, base_len))
            cut = np.sort(conf)[mask_len]
            remask = conf < cut
            known[r] = np.where(remask, -1, sampled[r])
            x[r, lo:hi] = np.where(remask, mask_id, sampled[r] + offset)
    return sampled
