"""Rewards for UniGRPO, registered by name (spec section 5).

A reward is a callable `reward(prompts, completions, **fields) -> float32 [N]`; `completions` are
response strings for text/understanding tasks and images for t2i; `fields` carry per-sample extras
(`answers=[...]`, `metadata=[...]`) and every reward ignores the fields it does not use.
`register_reward(name)` registers a factory (usually the reward's class); `build_reward(name,
**options)` makes one; `CombinedReward` sums weighted components and reports each.

Built in:
  'correctness' (2.0): extracted final answer equals the reference (`evals.answers`: numbers
      compared numerically, '1,000' == '1000.0' == '$1000'; words by normalized string).
  'format' (0.5): exactly one `<think>...</think>` block at the start, then a non-empty answer.
  'scene_judge': t2i reward from any `judge(image, prompt_metadata) -> score in [0, 1]` (e.g. the
      ShapesWorld scene parser + `evals.scene_geneval`).
  'learned': `LearnedReward(module, params, preprocess)`, a Flax reward model on (images, prompts);
      `TinyDualEncoder` is a CLIP-style example of the module a user plugs in.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmada_jax.evals import answers as answers_lib
from mmada_jax.rl.registry import Registry

RewardFn = Callable[..., np.ndarray]
REWARDS: Registry[Callable[..., RewardFn]] = Registry("reward")


def register_reward(name: str):
    """Decorator registering a reward factory: `factory(**options) -> reward callable`."""
    return REWARDS.register(name)


def build_reward(name: str, **options) -> RewardFn:
    return REWARDS.get(name)(**options)


def _check_lengths(name: str, n: int, **fields):
    for k, v in fields.items():
        if v is None or len(v) != n:
            raise ValueError(f"reward {name!r}: field {k!r} must have one entry per completion "
                             f"({n}), got {None if v is None else len(v)}")


# ----------------------------------------------------------------------------- text rewards
@register_reward("correctness")
@dataclasses.dataclass(frozen=True)
class CorrectnessReward:
    """`value` when the final answer of the completion matches `answers[i]` (a GSM8K-style
    reference '... #### 72' is cut to what follows '####')."""

    value: float = 2.0

    def __call__(self, prompts, completions, *, answers: Sequence[Any] = None, **_):
        _check_lengths("correctness", len(completions), answers=answers)
        out = np.zeros(len(completions), np.float32)
        for i, (c, ref) in enumerate(zip(completions, answers)):
            ref = str(ref)
            if "####" in ref:
                ref = ref.split("####")[-1]
            if answers_lib.answers_match(answers_lib.extract_final_answer(c), ref.strip()):
                out[i] = self.value
        return out


_THINK_RE = re.compile(r"\s*<think>(.*?)</think>(.*)", re.DOTALL)


def well_formatted(text: str) -> bool:
    """Exactly one `<think>` and one `</think>`, the text starts with the block (after
    whitespace), and something non-blank follows it."""
    if text.count("<think>") != 1 or text.count("</think>") != 1:
        return False
    m = _THINK_RE.fullmatch(text)
    return bool(m) and bool(m.group(2).strip())


@register_reward("format")
@dataclasses.dataclass(frozen=True)
class FormatReward:
    """`value` for a well-formatted completion (`well_formatted`)."""

    value: float = 0.5

    def __call__(self, prompts, completions, **_):
        return np.array([self.value if well_formatted(c) else 0.0 for c in completions], np.float32)


# ----------------------------------------------------------------------------- t2i rewards
@register_reward("scene_judge")
@dataclasses.dataclass(frozen=True)
class SceneJudgeReward:
    """scale * judge(image, metadata[i]) per generated image; the judge must return [0, 1]."""

    judge: Callable[[Any, Any], float]
    scale: float = 1.0

    def __call__(self, prompts, completions, *, metadata: Sequence[Any] = None, **_):
        _check_lengths("scene_judge", len(completions), metadata=metadata)
        out = np.zeros(len(completions), np.float32)
        for i, (img, md) in enumerate(zip(completions, metadata)):
            s = float(self.judge(img, md))
            if not 0.0 <= s <= 1.0:
                raise ValueError(f"reward 'scene_judge': judge returned {s} for sample {i} "
                                 f"(prompt {prompts[i]!r}); scores must lie in [0, 1]")
            out[i] = self.scale * s
        return out


@register_reward("learned")
class LearnedReward:
    """A learned reward model: scores = scale * module.apply({'params': params}, *preprocess(
    images, prompts)), one float per sample.

    Args:
      module: a Flax Linen module whose __call__ returns [N] scores.
      params: its parameters.
      preprocess: (images, prompts) -> tuple of arrays for the module (resize, normalize,
        tokenize); runs on the host, outside jit.
      scale: multiplier (the paper scales CLIP score and ImageReward by 0.1).
    """

    def __init__(self, module: nn.Module, params, preprocess: Callable[[Any, Any], tuple],
                 scale: float = 1.0):
        self.module, self.params, self.preprocess, self.scale = module, params, preprocess, scale
        self._apply = jax.jit(lambda p, *x: module.apply({"params": p}, *x))

    def score(self, images, prompts) -> np.ndarray:
        """float32 [N] scores of (images[i], prompts[i])."""
        inputs = self.preprocess(images, prompts)
        out = np.asarray(self._apply(self.params, *inputs), np.float32)
        if out.shape != (len(prompts),):
            raise ValueError(f"LearnedReward: {type(self.module).__name__} returned shape "
                             f"{out.shape}, expected [{len(prompts)}]")
        return self.scale * out

    def __call__(self, prompts, completions, **_):
        return self.score(completions, prompts)


class TinyDualEncoder(nn.Module):
    """CLIP-style example reward model: cosine(image embedding, text embedding) in [-1, 1].

    images float [N, H, W, C] in [-1, 1]; tokens int [N, T] (bytes here); text_mask bool [N, T].
    A real CLIP/ImageReward port replaces this module and its preprocess; LearnedReward is the same.
    """

    embed_dim: int = 32
    width: int = 16
    vocab_size: int = 256

    def setup(self):
        self.img_conv = nn.Conv(self.width, (3, 3), strides=(2, 2))
        self.img_proj = nn.Dense(self.embed_dim)
        self.tok_embed = nn.Embed(self.vocab_size, self.width)
        self.txt_proj = nn.Dense(self.embed_dim)

    def encode_image(self, images):
        """[N, H, W, C] -> [N, embed_dim] (unnormalized)."""
        return self.img_proj(nn.gelu(self.img_conv(images)).mean(axis=(1, 2)))

    def encode_text(self, tokens, text_mask):
        """[N, T] ids, [N, T] mask -> [N, embed_dim] (masked mean of embeddings, projected)."""
        x = self.tok_embed(tokens)
        m = text_mask[..., None].astype(x.dtype)
        return self.txt_proj((x * m).sum(1) / jnp.maximum(m.sum(1), 1.0))

    def __call__(self, images, tokens, text_mask):
        a = self.encode_image(images)
        b = self.encode_text(tokens, text_mask)
        a = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), 1e-6)
        b = b / jnp.maximum(jnp.linalg.norm(b, axis=-1, keepdims=True), 1e-6)
        return (a * b).sum(-1)


def byte_preprocess(max_len: int = 32) -> Callable[[Any, Any], tuple]:
    """Preprocess for TinyDualEncoder: uint8/float images in [0, 255] -> [-1, 1]; prompts ->
    UTF-8 bytes, truncated / padded to `max_len`, with a mask."""

    def pre(images, prompts):
        imgs = np.asarray(images, np.float32) / 127.5 - 1.0
        tok = np.zeros((len(prompts), max_len), np.int32)
        mask = np.zeros((len(prompts), max_len), bool)
        for i, p in enumerate(prompts):
            b = list(p.encode("utf-8"))[:max_len]
            tok[i, :len(b)], mask[i, :len(b)] = b, True
        return imgs, tok, mask

    return pre


# ----------------------------------------------------------------------------- combination
class CombinedReward:
    """Weighted sum of rewards: `total = sum_k weight_k * reward_k`.

    components: (name, reward callable, weight) triples. Calling returns (total float32 [N],
    {name: unweighted float32 [N]}).
    """

    def __init__(self, components: Sequence[tuple[str, RewardFn, float]]):
        if not components:
            raise ValueError("CombinedReward: no components")
        names = [c[0] for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"CombinedReward: duplicate component names {names}")
        self.components = list(components)

    @classmethod
    def from_weights(cls, weights: Mapping[str, float] | Sequence[tuple[str, float]],
                     options: Mapping[str, Mapping[str, Any]] | None = None) -> "CombinedReward":
        """Build registered rewards by name (`GRPOConfig.rewards`), with per-name options."""
        options = options or {}
        items = weights.items() if hasattr(weights, "items") else weights
        return cls([(n, build_reward(n, **options.get(n, {})), float(w)) for n, w in items])

    def __call__(self, prompts, completions, **fields):
        total = np.zeros(len(completions), np.float32)
        parts = {}
        for name, fn, w in self.components:
            r = np.asarray(fn(prompts, completions, **fields), np.float32)
            if r.shape != (len(completions),):
                raise ValueError(f"CombinedReward: reward {name!r} returned shape {r.shape}, "
                                 f"expected [{len(completions)}]")
            parts[name] = r
            total += w * r
        return total, parts


# Rewards in their own modules register on import (a new reward: a new module, imported here).
from mmada_jax.rl import rewards_equations  # noqa: E402,F401  'equations'
from mmada_jax.rl import rewards_listing  # noqa: E402,F401  'listing'
