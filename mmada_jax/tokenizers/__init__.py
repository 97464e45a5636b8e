"""mmada_jax.tokenizers: text tokenizers (bytes, SentencePiece, Hugging Face) and MAGVIT-v2.

`load_text_tokenizer(config_or_path, layout)` picks the text backend by file type.
"""

from __future__ import annotations

import os
from typing import Any

from mmada_jax.token_layout import TokenLayout
from mmada_jax.tokenizers.text import ByteTokenizer, IdMap, TextTokenizer, build_id_map

__all__ = ["ByteTokenizer", "HFTokenizer", "IdMap", "SentencePieceTokenizer", "TextTokenizer",
           "build_id_map", "load_text_tokenizer"]


def __getattr__(name):  # lazy: sentencepiece / tokenizers load only when asked for
    if name == "SentencePieceTokenizer":
        from mmada_jax.tokenizers.sentencepiece_tok import SentencePieceTokenizer
        return SentencePieceTokenizer
    if name == "HFTokenizer":
        from mmada_jax.tokenizers.hf import HFTokenizer
        return HFTokenizer
    raise AttributeError(name)


_KINDS = ("auto", "bytes", "sentencepiece", "hf")


def load_text_tokenizer(config_or_path: Any, layout: TokenLayout) -> TextTokenizer:
    """Build the text tokenizer.

    `config_or_path` is a path (a `.model` file -> SentencePiece; a `.json` file or a directory
    with `tokenizer.json` -> Hugging Face; a directory with exactly one `.model` -> SentencePiece),
    the string "bytes" (ByteTokenizer), or a mapping {kind: auto|bytes|sentencepiece|hf, path}
    (a config with a `text_tokenizer` entry is also accepted).
    """
    kind, path = "auto", config_or_path
    if hasattr(config_or_path, "keys"):
        cfg = config_or_path
        if "text_tokenizer" in cfg.keys():
            cfg = cfg["text_tokenizer"]
        if not hasattr(cfg, "keys"):
            return load_text_tokenizer(cfg, layout)
        kind = cfg.get("kind", "auto")
        path = cfg.get("path", None)
        if kind not in _KINDS:
            raise ValueError(f"text tokenizer kind {kind!r} unknown; known: {_KINDS}")
    if kind == "bytes" or (kind == "auto" and path == "bytes"):
        return ByteTokenizer(layout)
    if path is None:
        raise ValueError(f"text tokenizer of kind {kind!r} needs a 'path'")
    path = os.fspath(path)
    if kind == "auto":
        kind = _detect_kind(path)
    if kind == "sentencepiece":
        from mmada_jax.tokenizers.sentencepiece_tok import SentencePieceTokenizer
        if os.path.isdir(path):
            path = os.path.join(path, _single_model_file(path))
        return SentencePieceTokenizer(path, layout)
    from mmada_jax.tokenizers.hf import HFTokenizer
    return HFTokenizer(path, layout)


def _single_model_file(directory: str) -> str:
    models = sorted(f for f in os.listdir(directory) if f.endswith(".model"))
    if len(models) != 1:
        raise ValueError(f"{directory}: expected tokenizer.json or exactly one .model file, "
                         f"found {models or 'none'}")
    return models[0]


def _detect_kind(path: str) -> str:
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "tokenizer.json")):
            return "hf"
        _single_model_file(path)
        return "sentencepiece"
    if not os.path.exists(path):
        raise FileNotFoundError(f"text tokenizer not found: {path}")
    if path.endswith(".model"):
        return "sentencepiece"
    if path.endswith(".json"):
        return "hf"
    raise ValueError(f"{path}: cannot tell the tokenizer type (expected a .model or .json file, "
                     "or a directory holding one)")
