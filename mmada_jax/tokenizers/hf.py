"""Hugging Face `tokenizer.json` backend (the format of LLaDA's tokenizer), via `tokenizers`.

Loads from a local directory holding `tokenizer.json` or from the file itself; never downloads.
With `TokenLayout.mmada_8b()` and LLaDA's tokenizer the ids pass through unchanged.
"""

from __future__ import annotations

import os

from tokenizers import Tokenizer

from mmada_jax.token_layout import TokenLayout
from mmada_jax.tokenizers.text import TextTokenizer


def _tokenizer_json(path: str) -> str:
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Hugging Face tokenizer file not found: {path}")
    return path


class HFTokenizer(TextTokenizer):
    """A `tokenizers.Tokenizer` loaded from `tokenizer.json`, in the layout's ids."""

    def __init__(self, path: str | os.PathLike, layout: TokenLayout):
        self.path = _tokenizer_json(os.fspath(path))
        try:
            self.tok = Tokenizer.from_file(self.path)
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"{self.path}: not a Hugging Face tokenizer.json ({e})") from e
        self._init_layout(layout)

    @property
    def backend_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def _backend_special_id(self, surface):
        return self.tok.token_to_id(surface)

    def _encode_plain(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def _decode_plain(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)
