"""SentencePiece backend: load a `.model`, or train one from a text corpus.

Training uses settings that make encode/decode lossless on any Unicode text (identity
normalization, byte fallback, whitespace kept as is, no dummy prefix) and registers every special
surface string as a user-defined symbol, so the model itself never splits them either. The trained
model has `base_vocab_size` ordinary pieces plus the specials and fits
`TokenLayout.custom(base_vocab_size, codebook_size)`.
"""

from __future__ import annotations

import io
import os
from typing import Iterable

import sentencepiece as spm

from mmada_jax.token_layout import SPECIAL_NAMES, SPECIAL_STRINGS, TokenLayout
from mmada_jax.tokenizers.text import TextTokenizer


class SentencePieceTokenizer(TextTokenizer):
    """A SentencePiece model (path to `.model` or its serialized bytes) in the layout's ids."""

    def __init__(self, model: str | os.PathLike | bytes, layout: TokenLayout):
        if isinstance(model, (bytes, bytearray)):
            self.sp = spm.SentencePieceProcessor(model_proto=bytes(model))
            self.path = None
        else:
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"SentencePiece model not found: {path}")
            try:
                self.sp = spm.SentencePieceProcessor(model_file=path)
            except Exception as e:  # sentencepiece raises OSError/RuntimeError on bad files
                raise ValueError(f"{path}: not a SentencePiece model ({e})") from e
            self.path = path
        self._init_layout(layout)

    @property
    def backend_size(self) -> int:
        return self.sp.get_piece_size()

    def _backend_special_id(self, surface):
        i = self.sp.piece_to_id(surface)
        return i if self.sp.id_to_piece(i) == surface else None

    def _encode_plain(self, text):
        return self.sp.encode(text)

    def _decode_plain(self, ids):
        return self.sp.decode(ids)


def train_sentencepiece(texts: Iterable[str], out_path: str | os.PathLike, base_vocab_size: int,
                        model_type: str = "bpe", **trainer_kwargs) -> str:
    """Train on an iterable of strings; write `out_path` (a `.model` file) and return its path.

    The model has `base_vocab_size` ordinary pieces (unk, 256 byte pieces, learned pieces) plus
    the len(SPECIAL_NAMES) special surface strings as user symbols. Extra keyword arguments go to
    `SentencePieceTrainer.train` (e.g. `input_sentence_size`).
    """
    if base_vocab_size < 1 + 256 + 1:
        raise ValueError(f"train_sentencepiece: base_vocab_size={base_vocab_size} must exceed "
                         "257 (unk + 256 byte-fallback pieces)")
    out_path = os.fspath(out_path)
    if not out_path.endswith(".model"):
        raise ValueError(f"train_sentencepiece: out_path should end in .model, got {out_path}")
    options = dict(
        model_type=model_type,
        vocab_size=base_vocab_size + len(SPECIAL_NAMES),
        user_defined_symbols=[SPECIAL_STRINGS[n] for n in SPECIAL_NAMES],
        byte_fallback=True, character_coverage=0.9995, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
        minloglevel=2,
    )
    options.update(trainer_kwargs)
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=buf, **options)
    except RuntimeError as e:
        raise RuntimeError(f"train_sentencepiece: training {out_path} with "
                           f"base_vocab_size={base_vocab_size} failed: {e}") from e
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as f:
        f.write(buf.getvalue())
    return out_path
