"""A run's tokenizers, from config: the text tokenizer and the image tokenizer (codes <-> pixels).

    text = text_tokenizer(config)            # .encode(str) -> ids, .decode(ids) -> str
    image = image_tokenizer(config)          # .encode(images [B,S,S,3] in [-1,1]) -> codes [B,h,w]
                                             # .decode(codes) -> images in [-1, 1]

`config.data.tokenizer`: 'byte', or a SentencePiece `.model` path (trained on the ShapesWorld
corpus by `train_shapesworld_sentencepiece`). ShapesWorld SentencePiece models hold the thinking
prefix (`tokenizers.chat.THINK_PREFIX`, 240 characters) as one piece `<|think|>`:
`ThinkPrefixTokenizer` swaps the prefix for that piece before encoding and back after decoding,
so a CoT prompt costs one token instead of ~45.

`config.data.image_tokenizer`: 'pool' (the data pipeline's pooled-color stand-in, grid from
`num_image_tokens`) or a directory written by the image-tokenizer trainer (MAGVIT-v2; see
`load_magvit`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from mmada_jax.token_layout import SPECIAL_NAMES, SPECIAL_STRINGS, TokenLayout
from mmada_jax.tokenizers.chat import THINK_PREFIX

THINK_PIECE = "<|think|>"
EXTRA_SYMBOLS = ("<think>", "</think>", THINK_PIECE)


# ---------------------------------------------------------------------------- text
class ThinkPrefixTokenizer:
    """Wraps a `TextTokenizer`: THINK_PREFIX <-> the single piece `<|think|>`."""

    def __init__(self, inner):
        self.inner = inner
        self.layout = inner.layout

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text.replace(THINK_PREFIX, THINK_PIECE))

    __call__ = encode

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self.inner.decode(ids, skip_special_tokens).replace(THINK_PIECE, THINK_PREFIX)


# The VQA CoT styles whose texts train the demo's SentencePiece model, fixed so that a new style
# (which adds no words) leaves the vocabulary, and with it every earlier measurement, as it was.
CORPUS_VQA_COT_STYLES = ("inventory", "factored", "counted")


def shapesworld_corpus(num: int = 3000, seed: int = 0) -> list[str]:
    """Texts the ShapesWorld tasks produce (captions, knowledge prompts, questions with CoT,
    arithmetic problems, corpus documents, fact sentences), for tokenizer training."""
    from mmada_jax.data.shapesworld import knowledge, language, reasoning, scenes
    from mmada_jax.tokenizers.chat import chat_prompt_text
    rng = np.random.default_rng(seed)
    layout = TokenLayout.custom(256, 8)
    out = []
    for i in range(num):
        split = "test" if i % 10 == 0 else "train"  # every color/shape word, held-out ones too
        s = scenes.random_scene(rng, split)
        out.append(language.caption(s, rng))
        style = CORPUS_VQA_COT_STYLES[i % len(CORPUS_VQA_COT_STYLES)]
        q = language.question(s, rng, style=style)
        out.append(chat_prompt_text([dict(role="user", content=q["question"])], layout,
                                    think=True).replace(THINK_PREFIX, THINK_PIECE))
        out.append(language.cot_answer(q["cot"], q["answer"]))
        p = reasoning.arithmetic_problem(rng)
        out.append(p["question"])
        out.append(language.cot_answer(p["cot"], p["answer"]))
        out.append(reasoning.corpus_document(rng))
        ks = knowledge.knowledge_scene(rng, split)
        out.append(knowledge.knowledge_prompt(ks, rng))
        item = knowledge.ITEMS[i % len(knowledge.ITEMS)]
        out.append(knowledge.fact_sentence(item, rng))
    return out


def train_shapesworld_sentencepiece(path: str, base_vocab_size: int = 1024, num: int = 3000,
                                    seed: int = 0) -> str:
    """Train the ShapesWorld SentencePiece model at `path` (.model); returns the path."""
    from mmada_jax.tokenizers.sentencepiece_tok import train_sentencepiece
    syms = [SPECIAL_STRINGS[n] for n in SPECIAL_NAMES] + list(EXTRA_SYMBOLS)
    return train_sentencepiece(shapesworld_corpus(num, seed), path, base_vocab_size,
                               user_defined_symbols=syms)


def text_tokenizer(config, layout: TokenLayout | None = None):
    """The text tokenizer named by `config.data.tokenizer` ('byte' or a .model path)."""
    layout = layout or TokenLayout.from_config(config.tokens)
    name = str(config.data.get("tokenizer", "byte"))
    if name in ("byte", "bytes"):
        from mmada_jax.tokenizers import ByteTokenizer
        return ByteTokenizer(layout)
    path = os.path.expanduser(name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"config.data.tokenizer={name!r}: no such file (train one with "
                                "mmada_jax.assets.train_shapesworld_sentencepiece or use 'byte')")
    from mmada_jax.tokenizers.sentencepiece_tok import SentencePieceTokenizer
    tok = SentencePieceTokenizer(path, layout)
    if tok.sp.piece_to_id(THINK_PIECE) != tok.sp.unk_id():
        return ThinkPrefixTokenizer(tok)
    return tok


# ---------------------------------------------------------------------------- images
class PoolImageTokenizer:
    """The pooled-color stand-in (`data.codes.pool_quantize_*`): encode/decode on the host."""

    def __init__(self, grid: int, codebook_size: int, image_size: int):
        self.grid, self.codebook_size, self.image_size = grid, codebook_size, image_size
        self.name = f"pool{grid}x{grid}"

    def encode(self, images) -> np.ndarray:
        from mmada_jax.data.codes import pool_quantize_codes
        return pool_quantize_codes(images, self.grid, self.codebook_size)

    def decode(self, codes) -> np.ndarray:
        from mmada_jax.data.codes import pool_quantize_decode
        c = np.asarray(codes).reshape(len(codes), self.grid, self.grid)
        return pool_quantize_decode(c, self.image_size, self.codebook_size)


class MagvitImageTokenizer:
    """A trained MAGVIT-v2 (params + MagvitConfig) with jitted encode/decode."""

    def __init__(self, cfg, params, image_size: int, batch_size: int = 32):
        import jax
        from mmada_jax.tokenizers.magvit import MAGVITv2
        self.cfg, self.params, self.image_size = cfg, params, image_size
        self.grid = image_size // cfg.downsample_factor
        self.codebook_size = cfg.codebook_size
        self.name = f"magvit{self.grid}x{self.grid}"
        model = MAGVITv2(cfg)
        self._enc = jax.jit(lambda p, x: model.apply({"params": p}, x, method=model.encode))
        self._dec = jax.jit(lambda p, c: model.apply({"params": p}, c, method=model.decode))
        self.batch_size = batch_size
        self.source_mtime = 0.0  # modification time of the weights file (caches compare to it)

    def _batched(self, fn, x, pad_shape):
        x = np.asarray(x)
        out = []
        for lo in range(0, len(x), self.batch_size):
            part = x[lo:lo + self.batch_size]
            n = len(part)
            if n < self.batch_size:
                part = np.concatenate([part, np.zeros((self.batch_size - n, *pad_shape),
                                                      part.dtype)])
            out.append(np.asarray(fn(self.params, part))[:n])
        return np.concatenate(out) if out else np.zeros((0,))

    def encode(self, images) -> np.ndarray:
        s = self.image_size
        return self._batched(self._enc, np.asarray(images, np.float32), (s, s, 3)).astype(np.int32)

    def decode(self, codes) -> np.ndarray:
        c = np.asarray(codes, np.int32).reshape(len(codes), self.grid, self.grid)
        return self._batched(self._dec, c, (self.grid, self.grid))


def load_magvit(path: str, image_size: int):
    """A MAGVIT directory: either `magvit_config.json` + `params.msgpack` (`save_magvit`), or a
    workdir of `python -m mmada_jax.train_tokenizer` (`config.json` + `checkpoints/`)."""
    from flax import serialization
    from mmada_jax.tokenizers.magvit import MagvitConfig
    if os.path.exists(os.path.join(path, "magvit_config.json")):
        with open(os.path.join(path, "magvit_config.json")) as f:
            cfg = MagvitConfig.from_dict(json.load(f))
        target = _magvit_target(cfg)
        params_path = os.path.join(path, "params.msgpack")
        with open(params_path, "rb") as f:
            params = serialization.from_bytes(target, f.read())
        tok = MagvitImageTokenizer(cfg, params, image_size)
        tok.source_mtime = os.path.getmtime(params_path)
        return tok
    if not os.path.exists(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"{path}: neither magvit_config.json nor a tokenizer workdir "
                                "(config.json + checkpoints/)")
    import orbax.checkpoint as ocp
    with open(os.path.join(path, "config.json")) as f:
        cfg = MagvitConfig.from_dict(json.load(f)["magvit"])
    mgr = ocp.CheckpointManager(os.path.abspath(os.path.join(path, "checkpoints")),
                                item_handlers={"state": ocp.StandardCheckpointHandler()})
    step = mgr.latest_step()
    if step is None:
        raise FileNotFoundError(f"{path}/checkpoints: no finished checkpoint")
    raw = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    mgr.close()
    target = _magvit_target(cfg)
    params = serialization.from_state_dict(target, raw["state"]["params"])
    return MagvitImageTokenizer(cfg, params, image_size)


def _magvit_target(cfg):
    """A parameter tree of the right structure (values are replaced on restore)."""
    from mmada_jax.tokenizers import magvit
    try:
        return magvit.init_params(cfg, 0)
    except TypeError:  # an older signature took a PRNG key
        import jax
        return magvit.init_params(cfg, jax.random.key(0))


def save_magvit(path: str, cfg, params) -> None:
    """Write the directory `load_magvit` reads."""
    from flax import serialization
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "magvit_config.json"), "w") as f:
        json.dump(cfg.to_dict(), f)
    with open(os.path.join(path, "params.msgpack"), "wb") as f:
        f.write(serialization.to_bytes(params))


def image_tokenizer(config, layout: TokenLayout | None = None):
    """The image tokenizer named by `config.data.image_tokenizer` ('pool' or a MAGVIT dir)."""
    layout = layout or TokenLayout.from_config(config.tokens)
    d = config.data
    name = str(d.get("image_tokenizer", "pool"))
    v = int(d.num_image_tokens)
    grid = int(round(v ** 0.5))
    if grid * grid != v:
        raise ValueError(f"config.data.num_image_tokens={v} is not a square grid")
    if name == "pool":
        return PoolImageTokenizer(grid, layout.codebook_size, int(d.image_size))
    path = os.path.expanduser(name)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"config.data.image_tokenizer={name!r}: not a directory (use "
                                "'pool' or a trained MAGVIT directory)")
    tok = load_magvit(path, int(d.image_size))
    if tok.grid != grid or tok.codebook_size > layout.codebook_size:
        raise ValueError(f"image tokenizer {path} gives {tok.grid}x{tok.grid} codes of "
                         f"{tok.codebook_size}; the config expects {grid}x{grid} "
                         f"(num_image_tokens) and codebook <= {layout.codebook_size}")
    return tok


def batch_source(config, layout=None, text_tok=None, image_tok=None):
    """The data pipeline's batch source with this run's tokenizers (text encoder + codes_fn).

    A task named 'r2i' (knowledge-aware reason-then-draw rows) is made by `data.r2i.R2IRows`
    and merged in; the pipeline builds the other tasks."""
    from mmada_jax.data import build_batch_source
    from mmada_jax.data import r2i as r2i_lib
    import jax
    layout = layout or TokenLayout.from_config(config.tokens)
    text_tok = text_tok or text_tokenizer(config, layout)
    image_tok = image_tok or image_tokenizer(config, layout)
    r2i = "r2i" in config.tasks and int(config.tasks.r2i.batch_size) > 0
    pipe_cfg = config
    if r2i:
        pipe_cfg = config.copy_and_resolve_references()
        with pipe_cfg.unlocked():
            pipe_cfg.tasks.r2i.batch_size = 0
    src = build_batch_source(pipe_cfg, layout, tokenizer=text_tok, codes_fn=image_tok.encode,
                             process_index=jax.process_index(),
                             process_count=jax.process_count())
    if not r2i:
        return src
    d = config.data
    rows = r2i_lib.R2IRows(
        layout, text_tok.encode, image_tok.encode,
        batch_size=int(config.tasks.r2i.batch_size) // jax.process_count(),
        seq_len=int(config.seq_len), max_prompt_len=int(d.get("r2i_max_prompt_len", 24)),
        num_image_tokens=int(d.num_image_tokens), image_size=int(d.image_size),
        seed=int(d.seed) * 7919 + jax.process_index())
    order = [t for t, c in config.tasks.items() if int(c.batch_size) > 0]
    return r2i_lib.WithR2I(src, rows, "r2i", order)
