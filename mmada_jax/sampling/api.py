"""The Python API behind `python -m mmada_jax.sample`: load a trained run, then sample.

    s = Sampler.from_workdir("experiments/pretrain_tiny.py", "runs/tiny")
    texts = s.text(["What is 2+3?"], TextSamplerConfig(gen_length=64, steps=64, block_length=32))
    codes, images = s.t2i(["a red circle"], ImageSamplerConfig(steps=15))
    answers = s.mmu(images_in_minus1_1, ["What color is the circle?"])

Parameters come from the newest checkpoint (Checkpointer + training.loop.build's abstract state)
and are cast to `param_dtype` (bfloat16 by default for inference). Images are decoded by a
pluggable `decode_fn(codes [B, h, w]) -> images [B, H, W, 3] in [-1, 1]` (the MAGVIT-v2 decoder
when `magvit` weights are given, else the demo pool codec of `mmada_jax.data.codes`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mmada_jax.sampling import prompts as prompts_lib
from mmada_jax.sampling.image import ImageSamplerConfig, codes_to_grid, generate_image
from mmada_jax.sampling.logits import make_logits_fn
from mmada_jax.sampling.mmu import understand
from mmada_jax.sampling.text import TextSamplerConfig, generate_text


def load_params(config, workdir: str, devices=None, step: Optional[int] = None):
    """(params, step, setup) from the newest (or given) checkpoint under `workdir`."""
    from mmada_jax.training.checkpoint import checkpoint_dir, restore_params
    from mmada_jax.training.loop import build
    setup = build(config, devices)
    if not os.path.isdir(checkpoint_dir(workdir)):
        raise FileNotFoundError(f"no checkpoint directory under {workdir}")
    try:  # parameters only: the optimizer moments are never read
        params, step = restore_params(workdir, setup.abstract_state, step)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"no finished checkpoint in {checkpoint_dir(workdir)}") from e
    return params, step, setup


def cast_params(params, dtype: Optional[str]):
    if not dtype:
        return params
    dt = jnp.dtype(dtype)
    return jax.tree_util.tree_map(
        lambda a: a.astype(dt) if jnp.issubdtype(a.dtype, jnp.floating) else a, params)


def pool_codec(image_size: int, codebook_size: int, grid: int):
    """(encode_fn, decode_fn) of the demo pool codec (data.codes), for runs trained on it."""
    from mmada_jax.data import codes as codes_lib
    return (lambda images: codes_lib.pool_quantize_codes(images, grid, codebook_size),
            lambda codes: codes_lib.pool_quantize_decode(codes, image_size, codebook_size))


def magvit_codec(path: str, dtype: str = "float32"):
    """(encode_fn, decode_fn) of MAGVIT-v2 with released (Show-o) weights at `path`."""
    from mmada_jax.tokenizers import magvit
    from mmada_jax.tokenizers.magvit_convert import load_showo_magvit
    cfg = magvit.MagvitConfig.showo()
    params = load_showo_magvit(path, cfg)
    net = magvit.MAGVITv2(cfg)
    enc = jax.jit(lambda x: net.apply({"params": params}, x, method="encode"))
    dec = jax.jit(lambda c: net.apply({"params": params}, c, method="decode"))
    return (lambda x: np.asarray(enc(jnp.asarray(x, jnp.float32))),
            lambda c: np.asarray(dec(jnp.asarray(c, jnp.int32))))


def decode_text(tokenizer, ids, layout) -> str:
    """Decode ids; ids outside the text vocabulary (image codes from an undertrained model)
    become `<|img:code|>` / `<|id:n|>` instead of an error."""
    out, run = [], []
    for i in ids:
        if 0 <= i < layout.text_vocab_size:
            run.append(i)
            continue
        if run:
            out.append(tokenizer.decode(run))
            run = []
        out.append(f"<|img:{i - layout.image_offset}|>" if layout.is_image(i) else f"<|id:{i}|>")
    if run:
        out.append(tokenizer.decode(run))
    return "".join(out)


@dataclasses.dataclass
class Sampler:
    """A model, its params and what turns text and images into prompts and back."""
    model: Any
    params: Any
    layout: Any
    tokenizer: Any
    max_text_len: int = 128
    num_image_tokens: int = 256
    encode_image: Optional[Callable] = None     # images [B,H,W,3] in [-1,1] -> codes [B,h,w]
    decode_image: Optional[Callable] = None     # codes [B,h,w] -> images [B,H,W,3] in [-1,1]
    batch_size: int = 8
    pixels_per_token: int = 16                  # image side = sqrt(num_image_tokens) * this
    progress: Optional[Callable[[int, int], None]] = None  # (done, total) after each batch
    cache_attention_impl: Optional[str] = None

    @classmethod
    def from_workdir(cls, config, workdir: str, *, tokenizer=None, magvit: Optional[str] = None,
                     param_dtype: Optional[str] = "bfloat16", devices=None,
                     unroll_layers: bool = True, **kw) -> "Sampler":
        """Load the newest checkpoint of a run. `config`: a ConfigDict or an experiment path.
        `unroll_layers` gives each layer its own weight arrays (faster sampling; BENCHMARKS.md)."""
        from mmada_jax.config import load_config_file
        from mmada_jax.tokenizers import load_text_tokenizer
        if isinstance(config, str):
            path, _, arg = config.partition(":")
            config = load_config_file(path, arg or None)
        devices = devices or jax.devices()[:1]
        params, step, setup = load_params(config, workdir, devices)
        d = config.data
        t = int(kw.pop("max_text_len", None) or d.get("max_text_len", 128))
        # the data config's image span, else the one a full t2i row of seq_len leaves
        v = int(kw.pop("num_image_tokens", None) or d.get("num_image_tokens", 0)
                or config.seq_len - t - 3)
        size = int(kw.pop("image_size", None) or d.get("image_size", 256))
        layout = setup.layout
        tok = tokenizer or load_text_tokenizer(
            {"kind": "bytes"} if d.get("tokenizer", "byte") in ("byte", "bytes")
            else d.tokenizer, layout)
        grid = int(round(v ** 0.5))
        if magvit:
            enc, dec = magvit_codec(magvit)
            kw.setdefault("pixels_per_token", 16)
        else:
            enc, dec = pool_codec(size, layout.codebook_size, grid)
            kw.setdefault("pixels_per_token", max(1, size // grid))
        model, params = setup.model, cast_params(params, param_dtype)
        if unroll_layers:
            from mmada_jax.model import unstack_layers
            model, params = unstack_layers(model, params)
        s = cls(model, params, layout, tok,
                max_text_len=t, num_image_tokens=v,
                encode_image=enc, decode_image=dec, **kw)
        s.step = step
        return s

    # ------------------------------------------------------------------ helpers
    def _logits(self, positions):
        return make_logits_fn(self.model, self.params, positions, self.cache_attention_impl)

    def _batches(self, items):
        """(offset, chunk, n_real): chunks of batch_size; the last is padded by repeating its
        final item so that one compiled program serves every chunk."""
        n, bs = len(items), min(self.batch_size, len(items))
        for i in range(0, n, bs):
            chunk = list(items[i:i + bs])
            real = len(chunk)
            chunk += [chunk[-1]] * (bs - real)
            yield i, chunk, real
            if self.progress:
                self.progress(i + real, n)

    def _limit(self, cfg):
        return int(self.model.cfg.max_seq_len) - cfg.gen_length

    def _decode(self, tokens, p):
        return [decode_text(self.tokenizer, ids, self.layout) for ids in
                prompts_lib.completion_ids(tokens, p, self.layout)]

    # ------------------------------------------------------------------ tasks
    def text(self, prompts: Sequence[str], cfg: TextSamplerConfig = TextSamplerConfig(),
             key=None, chat: bool = True, think: bool = False) -> list[str]:
        """Completions of text prompts (chat template unless chat=False)."""
        key = jax.random.key(0) if key is None else key
        lg, out = self._logits("key_mask"), []
        for i, chunk, real in self._batches(prompts):
            toks, mask = prompts_lib.text_prompts(chunk, self.layout, self.tokenizer.encode,
                                                  chat, self._limit(cfg), think)
            res = generate_text(lg, toks, mask, jax.random.fold_in(key, i), cfg, self.layout)
            out += self._decode(res.tokens, toks.shape[1])[:real]
        return out

    def t2i(self, captions: Sequence[str], cfg: ImageSamplerConfig = ImageSamplerConfig(),
            key=None):
        """(codes [N, h, w], images [N, H, W, 3] in [-1, 1] or None without a decoder)."""
        key = jax.random.key(0) if key is None else key
        lg, codes = self._logits("absolute"), []
        for i, chunk, real in self._batches(captions):
            rows = prompts_lib.t2i_prompts(chunk, self.layout, self.tokenizer.encode,
                                           self.max_text_len, self.num_image_tokens)
            n = rows["tokens"].shape[1]
            if n > int(self.model.cfg.max_seq_len):
                raise ValueError(f"t2i rows of {n} tokens (max_text_len {self.max_text_len} + "
                                 f"{self.num_image_tokens} image tokens + 3) exceed the model's "
                                 f"max_seq_len {self.model.cfg.max_seq_len}")
            c = generate_image(lg, rows["tokens"], rows["key_mask"], rows["uncond_tokens"],
                               rows["uncond_key_mask"], jax.random.fold_in(key, i), cfg,
                               self.layout, image_start=rows["image_start"],
                               num_image_tokens=self.num_image_tokens)
            codes.append(codes_to_grid(c)[:real])
        codes = np.concatenate(codes)
        images = self.decode_image(codes) if self.decode_image else None
        return codes, images

    def mmu(self, images, questions: Sequence[str],
            cfg: TextSamplerConfig = TextSamplerConfig(gen_length=64, steps=64, block_length=32),
            key=None, think: bool = False) -> list[str]:
        """Answers about images [N, H, W, 3] in [-1, 1] (or image codes [N, h, w] ints)."""
        images = np.asarray(images)
        if np.issubdtype(images.dtype, np.integer):
            codes = images
        else:
            if self.encode_image is None:
                raise ValueError("mmu on pixels needs encode_image (a MAGVIT or pool codec)")
            codes = np.asarray(self.encode_image(images))
        key = jax.random.key(0) if key is None else key
        lg, out = self._logits("key_mask"), []
        pairs = list(zip(list(codes), questions))
        for i, chunk, real in self._batches(pairs):
            res, p = understand(lg, [c for c, _ in chunk], [q for _, q in chunk], self.layout,
                                self.tokenizer.encode, cfg, jax.random.fold_in(key, i), think)
            out += self._decode(res.tokens, p)[:real]
        return out
