"""Multimodal understanding: image codes + question -> answer, through the LLaDA text sampler.

The prompt is `<|mmu|> <|soi|> img*V <|eoi|>` + the chat prompt (spec section 2); the answer is
sampled after it exactly as text is (`TextSamplerConfig`, caches and all).
"""

from __future__ import annotations

from typing import Sequence

from mmada_jax.sampling import prompts as prompts_lib
from mmada_jax.sampling.text import TextOutput, TextSamplerConfig, check_length, generate_text


def understand(logits_fn, image_codes, questions: Sequence[str], layout, encode,
               cfg: TextSamplerConfig = TextSamplerConfig(), key=None,
               think: bool = False) -> tuple[TextOutput, int]:
    """Answers for (image codes [B, h, w] or [B, V], questions [B]).

    Returns (TextOutput with tokens [B, P + gen_length], P); the answer ids are
    `prompts.completion_ids(out.tokens, P, layout)`."""
    tokens, mask = prompts_lib.mmu_prompts(image_codes, questions, layout, encode, think=think)
    from mmada_jax.sampling.logits import as_logits
    check_length(tokens.shape[1], cfg.gen_length, as_logits(logits_fn), "mmu prompt")
    return generate_text(logits_fn, tokens, mask, key, cfg, layout), tokens.shape[1]
