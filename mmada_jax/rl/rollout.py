"""Rollouts through the samplers (mmada_jax.sampling): prompts -> sampled responses as token rows.

Three kinds of prompt, one row format for the UniGRPO update:
  text  (task 'reasoning'): chat prompt with the thinking prefix -> LLaDA text sampler;
  mmu   (task 'vqa'): `<|mmu|> <|soi|> img <|eoi|>` + chat prompt -> the same sampler;
  t2i   (task 't2i'): t2i row -> MaskGIT image sampler; r2i rows (`data.r2i`) reason then draw.

`Samples` holds host arrays: tokens [N, L] (prompt + response), key_mask [N, L], positions [N, L]
(the positions the sampler used: each row's visible tokens counted from 0 for text, 0..L-1 for
image rows), region [N, L] (the response tokens UniGRPO may mask: the generated text up to and
including its first eos, or the image tokens), plus the decoded completions (strings or images).
Rows of different tasks are right-padded to a common length with invisible pads by `concat`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mmada_jax.data import images as image_lib
from mmada_jax.data import r2i as r2i_lib
from mmada_jax.data.shapesworld import scenes as sc
from mmada_jax.sampling import prompts as prompts_lib
from mmada_jax.sampling.image import ImageSamplerConfig, generate_image
from mmada_jax.sampling.logits import make_logits_fn, mask_positions
from mmada_jax.sampling.text import TextSamplerConfig, generate_text


@dataclasses.dataclass
class Samples:
    tokens: np.ndarray
    key_mask: np.ndarray
    positions: np.ndarray
    region: np.ndarray
    completions: list
    codes: np.ndarray | None = None  # image rows: [N, V]

    @property
    def response_len(self) -> np.ndarray:
        return self.region.sum(-1)


def concat(parts: Sequence[Samples], length: int | None = None) -> Samples:
    """Stack rows of several Samples, right-padding each to `length` (default: the longest) with
    eos-free invisible pads (key_mask False, never in a region)."""
    length = length or max(p.tokens.shape[1] for p in parts)

    def pad(x, value):
        if x.shape[1] > length:
            raise ValueError(f"rollout rows of length {x.shape[1]} exceed {length}")
        out = np.full((x.shape[0], length), value, x.dtype)
        out[:, :x.shape[1]] = x
        return out
    return Samples(np.concatenate([pad(p.tokens, 0) for p in parts]),
                   np.concatenate([pad(p.key_mask, False) for p in parts]),
                   np.concatenate([pad(p.positions, 0) for p in parts]),
                   np.concatenate([pad(p.region, False) for p in parts]),
                   [c for p in parts for c in p.completions])


def fixed_left_pad(ids_list, pad_id: int, length: int | None):
    """`prompts.left_pad` to exactly `length` (fixed shapes: one compile per config)."""
    tokens, mask = prompts_lib.left_pad(ids_list, pad_id, length)
    if length is not None and tokens.shape[1] < length:
        extra = length - tokens.shape[1]
        tokens = np.concatenate([np.full((len(tokens), extra), pad_id, np.int32), tokens], 1)
        mask = np.concatenate([np.zeros((len(mask), extra), bool), mask], 1)
    return tokens, mask


def first_eos_region(gen: np.ndarray, eos: int) -> np.ndarray:
    """bool [N, G]: generated positions up to and including the first eos (all if none)."""
    is_eos = gen == eos
    has = is_eos.any(-1)
    first = np.where(has, is_eos.argmax(-1), gen.shape[1] - 1)
    return np.arange(gen.shape[1])[None, :] <= first[:, None]


# ---------------------------------------------------------------------------- text / mmu
def sample_text(model, params, prompt_ids: Sequence[Sequence[int]], layout, tokenizer,
                cfg: TextSamplerConfig, key, prompt_len: int | None = None) -> Samples:
    """LLaDA sampling after left-padded prompts; completions decoded up to <|eot_id|>/eos."""
    tokens, pm = fixed_left_pad(prompt_ids, layout.eos, prompt_len)
    out = generate_text(make_logits_fn(model, params), tokens, pm, key, cfg, layout)
    full = np.asarray(out.tokens)
    p = tokens.shape[1]
    km = np.concatenate([pm, np.ones((len(pm), cfg.gen_length), bool)], 1)
    region = np.zeros(full.shape, bool)
    region[:, p:] = first_eos_region(full[:, p:], layout.eos)
    texts = [decode_text(tokenizer, ids, layout) for ids in
             prompts_lib.completion_ids(full, p, layout)]
    return Samples(full, km, np.asarray(mask_positions(jnp.asarray(km))), region, texts)


def decode_text(tokenizer, ids, layout) -> str:
    """Decode sampled ids; non-text ids (image codes the sampler may propose) are dropped."""
    return tokenizer.decode([i for i in ids if 0 <= i < layout.text_vocab_size])


def chat_prompt(question: str, layout, tokenizer, think: bool = True) -> list[int]:
    return prompts_lib.chat_ids(question, layout, tokenizer.encode, think=think)


def scene_codes(scene_jsons: Sequence[str], image_tokenizer, image_size: int) -> np.ndarray:
    """Render scenes and code them with the image tokenizer: [N, V]."""
    imgs = np.stack([image_lib.normalize(sc.render(sc.Scene.from_json(s), image_size))
                     for s in scene_jsons])
    return np.asarray(image_tokenizer.encode(imgs)).reshape(len(imgs), -1)


def mmu_prompt(codes, question: str, layout, tokenizer, think: bool = True) -> list[int]:
    return prompts_lib.mmu_ids(codes, question, layout, tokenizer.encode, think=think)


# ---------------------------------------------------------------------------- images
def sample_images(model, params, captions: Sequence[str], layout, tokenizer, image_tokenizer,
                  cfg: ImageSamplerConfig, key, *, max_text_len: int,
                  num_image_tokens: int) -> Samples:
    """MaskGIT t2i; completions are decoded images (float [S, S, 3] in [-1, 1])."""
    p = prompts_lib.t2i_prompts(captions, layout, tokenizer.encode, max_text_len,
                                num_image_tokens)
    s0, v = p["image_start"], num_image_tokens
    codes = np.asarray(generate_image(
        make_logits_fn(model, params, positions="absolute"), p["tokens"], p["key_mask"],
        p["uncond_tokens"], p["uncond_key_mask"], key, cfg, layout, image_start=s0,
        num_image_tokens=v))
    tokens = p["tokens"].copy()
    tokens[:, s0:s0 + v] = layout.image_ids(codes)
    region = np.zeros(tokens.shape, bool)
    region[:, s0:s0 + v] = True
    pos = np.broadcast_to(np.arange(tokens.shape[1], dtype=np.int32), tokens.shape).copy()
    images = list(np.asarray(image_tokenizer.decode(codes)))
    return Samples(tokens, p["key_mask"].copy(), pos, region, images, codes)


@jax.jit
def _fill_span_step(logits, x, span, k):
    """Commit the k most confident masked positions inside `span` (greedy, low confidence)."""
    x0 = jnp.argmax(logits, -1).astype(jnp.int32)
    conf = jnp.take_along_axis(jax.nn.softmax(logits, -1), x0[..., None], -1)[..., 0]
    conf = jnp.where(span, conf, -jnp.inf)
    kth = jnp.take_along_axis(jnp.sort(conf, -1)[:, ::-1], jnp.maximum(k - 1, 0)[:, None], -1)
    commit = span & (conf >= kth) & (k[:, None] > 0)
    return jnp.where(commit, x0, x), span & ~commit


def fill_span(model, params, tokens, key_mask, span, steps: int, text_vocab: int):
    """Greedy LLaDA-rule filling of an inner span (the reasoning of an r2i row: text sampler
    generates suffixes only). Logits restricted to the text vocabulary."""
    x, span = jnp.asarray(tokens), jnp.asarray(span)
    apply = jax.jit(lambda p, t, m: model.apply({"params": p}, t, key_mask=m))
    n = np.asarray(span.sum(-1))
    for s in range(steps):
        k = jnp.asarray((n * (s + 1)) // steps - (n * s) // steps, jnp.int32)
        logits = apply(params, x, key_mask)[..., :text_vocab]
        x, span = _fill_span_step(logits, x, span, k)
    return np.array(x)  # a writable copy


def sample_r2i(model, params, prompts: Sequence[str], layout, tokenizer, image_tokenizer,
               image_cfg: ImageSamplerConfig, key, *, max_prompt_len: int, reasoning_len: int,
               num_image_tokens: int, reasoning_steps: int = 16):
    """Reason, then draw: returns (Samples of the images, reasoning texts)."""
    rows = [r2i_lib.r2i_prompt_row(tokenizer.encode(p), layout, max_prompt_len, reasoning_len,
                                   num_image_tokens) for p in prompts]
    tokens = np.stack([r["tokens"] for r in rows])
    km = np.stack([r["key_mask"] for r in rows])
    r0, s0, v = int(rows[0]["reasoning_start"]), int(rows[0]["image_start"]), num_image_tokens
    span = np.zeros(tokens.shape, bool)
    span[:, r0:r0 + reasoning_len] = True
    tokens = fill_span(model, params, tokens, km, span, reasoning_steps, layout.text_vocab_size)
    texts = []
    for row in tokens[:, r0:r0 + reasoning_len]:
        ids = row.tolist()
        ids = ids[:ids.index(layout.eos)] if layout.eos in ids else ids
        texts.append(decode_text(tokenizer, ids, layout))
    cfg = dataclasses.replace(image_cfg, guidance_scale=0.0)
    codes = np.asarray(generate_image(
        make_logits_fn(model, params, positions="absolute"), tokens, km, None, None, key, cfg,
        layout, image_start=s0, num_image_tokens=v))
    tokens[:, s0:s0 + v] = layout.image_ids(codes)
    region = np.zeros(tokens.shape, bool)
    region[:, s0:s0 + v] = True
    pos = np.broadcast_to(np.arange(tokens.shape[1], dtype=np.int32), tokens.shape).copy()
    images = list(np.asarray(image_tokenizer.decode(codes)))
    return Samples(tokens, km, pos, region, images, codes), texts


def repeat(items: Sequence[Any], g: int) -> list:
    """Each item G times in a row (prompt-major groups)."""
    return [it for it in items for _ in range(g)]
