"""The vocabulary layout: every special id and the image-token range, in one object.

Nothing else in mmada-jax hard-codes a token id: code receives a `TokenLayout` (usually built from
`config.tokens` with `TokenLayout.from_config`) and asks it.

The released MMaDA-8B layout (spec section 2): the LLaDA text tokenizer has 126349 entries; image
code `c` in [0, codebook_size) is token `image_offset + c` with `image_offset = 126349`; the model's
embedding has 134656 rows (a padded size, larger than 126349 + 8192 = 134541).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

# Special tokens by name, in the order the small custom layouts allocate them.
SPECIAL_NAMES = (
    "bos", "eos", "mask", "soi", "eoi", "sov", "eov", "t2i", "mmu", "t2v", "v2v", "lvg",
    "ipad", "r2i", "start_header", "end_header", "eot_id",
)

# Surface strings of the special tokens (what the text tokenizers must never split).
SPECIAL_STRINGS = {
    "bos": "<|startoftext|>", "eos": "<|endoftext|>", "mask": "<|mdm_mask|>",
    "soi": "<|soi|>", "eoi": "<|eoi|>", "sov": "<|sov|>", "eov": "<|eov|>", "t2i": "<|t2i|>",
    "mmu": "<|mmu|>", "t2v": "<|t2v|>", "v2v": "<|v2v|>", "lvg": "<|lvg|>", "ipad": "[iPAD]",
    "r2i": "<|r2i|>", "start_header": "<|start_header_id|>", "end_header": "<|end_header_id|>",
    "eot_id": "<|eot_id|>",
}


@dataclasses.dataclass(frozen=True)
class TokenLayout:
    """Ids of the text vocabulary, the specials and the image codes.

    Attributes:
      text_vocab_size: entries of the text tokenizer (specials included); the image offset.
      codebook_size: number of image codes (2**bits of the LFQ quantizer).
      model_vocab_size: rows of the embedding / columns of the head (>= offset + codebook).
      specials: name -> id for every name in SPECIAL_NAMES.
    """

    text_vocab_size: int
    codebook_size: int
    model_vocab_size: int
    specials: Mapping[str, int]

    def __post_init__(self):
        missing = [n for n in SPECIAL_NAMES if n not in self.specials]
        if missing:
            raise ValueError(f"TokenLayout: missing special ids {missing}")
        unknown = [n for n in self.specials if n not in SPECIAL_NAMES]
        if unknown:
            raise ValueError(f"TokenLayout: unknown special names {unknown}; known: {SPECIAL_NAMES}")
        if self.image_offset + self.codebook_size > self.model_vocab_size:
            raise ValueError(
                f"TokenLayout: image ids end at {self.image_offset + self.codebook_size} but "
                f"model_vocab_size is {self.model_vocab_size}")
        for name, i in self.specials.items():
            if not 0 <= i < self.text_vocab_size:
                raise ValueError(f"TokenLayout: special {name}={i} outside the text vocabulary "
                                 f"[0, {self.text_vocab_size})")
        ids = [self.specials[n] for n in SPECIAL_NAMES if n not in ("sot", "eot")]
        # bos/eos double as <|sot|>/<|eot|>; every other special must be distinct.
        if len(set(ids)) != len(ids):
            raise ValueError(f"TokenLayout: special ids are not distinct: {dict(self.specials)}")

    # Attribute access for the common ids: layout.mask, layout.soi, ...
    def __getattr__(self, name):
        specials = self.__dict__.get("specials")
        if specials is not None and name in specials:
            return specials[name]
        raise AttributeError(name)

    @property
    def image_offset(self) -> int:
        return self.text_vocab_size

    @property
    def pad(self) -> int:
        """Text padding id (eos, as in LLaDA)."""
        return self.specials["eos"]

    def image_ids(self, codes):
        """Image codes [..] in [0, codebook) -> token ids."""
        return codes + self.image_offset

    def image_codes(self, ids):
        """Token ids in the image range -> codes."""
        return ids - self.image_offset

    def is_image(self, ids):
        return (ids >= self.image_offset) & (ids < self.image_offset + self.codebook_size)

    def special_strings(self) -> dict[str, int]:
        """Surface string -> id for every special."""
        return {SPECIAL_STRINGS[n]: self.specials[n] for n in SPECIAL_NAMES}

    def to_dict(self) -> dict:
        return dict(text_vocab_size=self.text_vocab_size, codebook_size=self.codebook_size,
                    model_vocab_size=self.model_vocab_size, specials=dict(self.specials))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def mmada_8b(cls) -> "TokenLayout":
        """The released MMaDA-8B ids exactly (spec section 2)."""
        return cls(
            text_vocab_size=126349, codebook_size=8192, model_vocab_size=134656,
            specials=dict(
                bos=126080, eos=126081, mask=126336, soi=126084, eoi=126085, sov=126086,
                eov=126087, t2i=126088, mmu=126089, t2v=126090, v2v=126091, lvg=126092,
                ipad=126093, r2i=126094, start_header=126346, end_header=126347, eot_id=126348))

    @classmethod
    def custom(cls, base_vocab_size: int, codebook_size: int,
               model_vocab_size: int | None = None, pad_to_multiple: int = 64) -> "TokenLayout":
        """Small tokenizers: ids [0, base) for ordinary pieces, then the specials, then images.

        The text vocabulary is `base_vocab_size + len(SPECIAL_NAMES)`; the model vocabulary is
        rounded up to `pad_to_multiple` unless given.
        """
        if base_vocab_size < 1 or codebook_size < 1:
            raise ValueError("TokenLayout.custom: sizes must be positive")
        specials = {n: base_vocab_size + i for i, n in enumerate(SPECIAL_NAMES)}
        text = base_vocab_size + len(SPECIAL_NAMES)
        need = text + codebook_size
        if model_vocab_size is None:
            model_vocab_size = -(-need // pad_to_multiple) * pad_to_multiple
        return cls(text, codebook_size, model_vocab_size, specials)

    @classmethod
    def from_config(cls, cfg) -> "TokenLayout":
        """From `config.tokens`: {preset: 'mmada_8b'} or {preset: 'custom', base_vocab_size,
        codebook_size[, model_vocab_size]}."""
        preset = cfg.get("preset", "mmada_8b")
        if preset == "mmada_8b":
            return cls.mmada_8b()
        if preset == "custom":
            mvs = cfg.get("model_vocab_size", None) or None
            return cls.custom(int(cfg.base_vocab_size), int(cfg.codebook_size), mvs)
        raise ValueError(f"config.tokens.preset: unknown preset {preset!r} "
                         "(known: 'mmada_8b', 'custom')")


def image_column_mask(layout: TokenLayout, vocab_size: int | None = None) -> np.ndarray:
    """Boolean [vocab] that is True on the image-token columns."""
    v = vocab_size or layout.model_vocab_size
    cols = np.zeros((v,), bool)
    cols[layout.image_offset:layout.image_offset + layout.codebook_size] = True
    return cols
