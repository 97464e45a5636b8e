"""The text tokenizer interface shared by every backend, and the trivial byte backend.

A backend only turns plain text (no special tokens) into its own ids and back. `TextTokenizer`
adds what the rest of mmada-jax relies on:
  * special tokens: the layout's surface strings (`layout.special_strings()`) are cut out of the
    text first and mapped to the layout's ids, so they are never split;
  * one id space, the layout's: backend ids are translated by an `IdMap` (identity when the
    backend already uses the layout's ids, e.g. LLaDA's tokenizer with `TokenLayout.mmada_8b()`;
    a monotone renumbering when the backend holds the specials elsewhere, e.g. a SentencePiece
    model trained with them as user symbols and `TokenLayout.custom(base, codebook)`);
  * padded batch encoding, the chat template and the thinking prefix.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Sequence

import numpy as np

from mmada_jax.token_layout import TokenLayout
from mmada_jax.tokenizers.chat import THINK_PREFIX, chat_prompt_text


@dataclasses.dataclass(frozen=True)
class IdMap:
    """Backend id <-> layout id.

    Attributes:
      to_layout: int64 [backend_size], layout id of each backend id.
      to_backend: int64 [text_vocab_size], backend id of each layout id (-1: none, i.e. a special
        the backend does not know, which only the layout can decode).
      mode: 'identity' or 'compact'.
    """

    to_layout: np.ndarray
    to_backend: np.ndarray
    mode: str


def build_id_map(backend_size: int, backend_special_ids: dict[str, int | None],
                 layout: TokenLayout, name: str = "tokenizer") -> IdMap:
    """Align a backend's ids with `layout`.

    `backend_special_ids` maps each special surface string to the backend's id for it, or None when
    the backend has no such piece.

    identity: every special the backend knows sits at its layout id and the backend fits inside
      the layout's text vocabulary; ids pass through unchanged.
    compact: otherwise the backend's non-special ids, in order, take the layout's non-special ids,
      in order; this needs `backend_size - known_specials == text_vocab_size - num_specials`.
    """
    specials = layout.special_strings()  # surface -> layout id
    known = {s: b for s, b in backend_special_ids.items() if b is not None}
    for s, b in known.items():
        if not 0 <= b < backend_size:
            raise ValueError(f"{name}: special {s!r} has backend id {b} outside [0, {backend_size})")
    vocab = layout.text_vocab_size
    if backend_size <= vocab and all(specials[s] == b for s, b in known.items()):
        to_backend = np.arange(vocab, dtype=np.int64)
        to_backend[backend_size:] = -1
        for s, lid in specials.items():
            if s not in known:
                to_backend[lid] = -1
        return IdMap(np.arange(backend_size, dtype=np.int64), to_backend, "identity")

    special_b = set(known.values())
    special_l = set(specials.values())
    plain_b = np.array([i for i in range(backend_size) if i not in special_b], np.int64)
    plain_l = np.array([i for i in range(vocab) if i not in special_l], np.int64)
    if len(plain_b) != len(plain_l):
        raise ValueError(
            f"{name}: cannot align {backend_size} backend ids ({len(known)} of them layout "
            f"specials) with the layout's text vocabulary of {vocab} ids ({len(special_l)} "
            f"specials): the backend has {len(plain_b)} ordinary ids, the layout "
            f"{len(plain_l)}. For a small tokenizer use TokenLayout.custom({len(plain_b)}, "
            "codebook_size).")
    to_layout = np.empty(backend_size, np.int64)
    to_layout[plain_b] = plain_l
    to_backend = np.full(vocab, -1, np.int64)
    to_backend[plain_l] = plain_b
    for s, b in known.items():
        to_layout[b] = specials[s]
        to_backend[specials[s]] = b
    return IdMap(to_layout, to_backend, "compact")


class TextTokenizer:
    """Base class. Subclasses implement `backend_size`, `_backend_special_id`,
    `_encode_plain(text) -> backend ids` and `_decode_plain(backend ids) -> text`, then call
    `_init_layout(layout)`."""

    layout: TokenLayout
    id_map: IdMap

    # ------------------------------------------------------------------ backend hooks
    @property
    def backend_size(self) -> int:
        raise NotImplementedError

    def _backend_special_id(self, surface: str) -> int | None:
        raise NotImplementedError

    def _encode_plain(self, text: str) -> list[int]:
        raise NotImplementedError

    def _decode_plain(self, ids: list[int]) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ setup
    def _init_layout(self, layout: TokenLayout) -> None:
        self.layout = layout
        self._special_ids = layout.special_strings()
        self._special_by_id = {i: s for s, i in self._special_ids.items()}
        alternatives = sorted(self._special_ids, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")")
        self.id_map = build_id_map(
            self.backend_size, {s: self._backend_special_id(s) for s in self._special_ids},
            layout, name=type(self).__name__)

    # ------------------------------------------------------------------ public API
    @property
    def vocab_size(self) -> int:
        """Text vocabulary size in the layout's id space (the image offset)."""
        return self.layout.text_vocab_size

    def encode(self, text: str) -> list[int]:
        """Text -> layout ids. Adds no bos/eos; special surface strings become their ids."""
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.encode: expected str, got {type(text)}")
        ids: list[int] = []
        for k, part in enumerate(self._special_re.split(text)):
            if k % 2:  # captured special
                ids.append(self._special_ids[part])
            elif part:
                ids.extend(self.id_map.to_layout[self._encode_plain(part)].tolist())
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Layout ids -> text; specials print as their surface strings (or are dropped)."""
        ids = [int(i) for i in np.asarray(list(ids)).reshape(-1)]
        out: list[str] = []
        run: list[int] = []

        def flush():
            if run:
                out.append(self._decode_plain(self.id_map.to_backend[run].tolist()))
                run.clear()

        for i in ids:
            if i in self._special_by_id:
                flush()
                if not skip_special_tokens:
                    out.append(self._special_by_id[i])
                continue
            if not 0 <= i < self.layout.text_vocab_size or self.id_map.to_backend[i] < 0:
                raise ValueError(f"{type(self).__name__}.decode: id {i} is not a text token "
                                 f"(text vocabulary [0, {self.layout.text_vocab_size}))")
            run.append(i)
        flush()
        return "".join(out)

    def batch_encode(self, texts: Sequence[str], max_len: int | None = None,
                     padding_side: str = "right", pad_id: int | None = None,
                     truncate: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Encode and pad to a rectangle.

        Returns (ids int32 [B, L], mask bool [B, L] True on real tokens); L = max_len or the
        longest row. `pad_id` defaults to the layout's pad (eos). Rows longer than max_len raise
        unless `truncate` (keeps the first max_len ids).
        """
        if padding_side not in ("left", "right"):
            raise ValueError(f"batch_encode: padding_side must be 'left' or 'right', "
                             f"got {padding_side!r}")
        rows = [self.encode(t) for t in texts]
        length = max_len if max_len is not None else max((len(r) for r in rows), default=0)
        pad = self.layout.pad if pad_id is None else pad_id
        ids = np.full((len(rows), length), pad, np.int32)
        mask = np.zeros((len(rows), length), bool)
        for b, r in enumerate(rows):
            if len(r) > length:
                if not truncate:
                    raise ValueError(f"batch_encode: text {b} has {len(r)} tokens > max_len="
                                     f"{length} (pass truncate=True to cut)")
                r = r[:length]
            sl = slice(0, len(r)) if padding_side == "right" else slice(length - len(r), length)
            ids[b, sl] = r
            mask[b, sl] = True
        return ids, mask

    def chat(self, messages: Sequence[dict], add_generation_prompt: bool = True,
             think: bool = False) -> list[int]:
        """The chat template (spec section 2) as layout ids, starting with bos: the rendered
        string is tokenized as a whole, like a Hugging Face chat template."""
        return self.encode(self.chat_text(messages, add_generation_prompt, think))

    def chat_text(self, messages: Sequence[dict], add_generation_prompt: bool = True,
                  think: bool = False) -> str:
        """The chat template as a string (see `chat_prompt_text`)."""
        return chat_prompt_text(messages, self.layout, add_generation_prompt, think)

    @staticmethod
    def with_thinking(text: str) -> str:
        """Prepend the thinking prefix to a user turn."""
        return THINK_PREFIX + text

    think_prefix = THINK_PREFIX


class ByteTokenizer(TextTokenizer):
    """UTF-8 bytes as ids 0..255; the layout defaults to `TokenLayout.custom(256, codebook)`."""

    def __init__(self, layout: TokenLayout | None = None, codebook_size: int = 64):
        self._init_layout(layout or TokenLayout.custom(256, codebook_size))

    @property
    def backend_size(self) -> int:
        return 256

    def _backend_special_id(self, surface):
        return None

    def _encode_plain(self, text):
        return list(text.encode("utf-8"))

    def _decode_plain(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")
