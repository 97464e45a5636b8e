"""Synthetic batches in the t2i / lm / mmu layouts: a test utility, not the product's data path.

Random token rows with the right structure (specials, left-padded captions, image spans, chat
prompts, eos padding) so the training loop, sharding and checkpointing can be exercised without
data. Deterministic in (seed, step); its state is the next step index.

Reads `config.seq_len`, `config.tasks.<t>.batch_size`, `config.data.seed` and
`config.data.max_text_len` (t2i caption budget; the image span is seq_len - max_text_len - 3).
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data import register_batch_source


def _t2i_rows(rs, layout, b, seq_len, max_text_len):
    v = seq_len - max_text_len - 3
    if v <= 0:
        raise ValueError(f"synthetic t2i: seq_len={seq_len} leaves no room for image tokens with "
                         f"max_text_len={max_text_len}")
    text_vocab = min(layout.specials.values())
    tok = np.full((b, seq_len), layout.ipad, np.int32)
    key = np.zeros((b, seq_len), bool)
    tgt = np.zeros((b, seq_len), bool)
    for i in range(b):
        n = rs.randint(0, max_text_len - 2)  # caption length (0 = unconditional row)
        text = [layout.t2i, layout.bos, *rs.randint(0, text_vocab, n).tolist(), layout.eos]
        pad = max_text_len + 1 - len(text)  # text part is left-padded to max_text_len + 1
        img = (layout.image_offset + rs.randint(0, layout.codebook_size, v)).tolist()
        tok[i] = [layout.ipad] * pad + text + [layout.soi, *img, layout.eoi]
        key[i, pad:] = True
        tgt[i, max_text_len + 2:max_text_len + 2 + v] = True
    return dict(tokens=tok, key_mask=key, target_mask=tgt)


def _lm_rows(rs, layout, b, seq_len):
    text_vocab = min(layout.specials.values())
    tok = np.full((b, seq_len), layout.eos, np.int32)
    for i in range(b):
        n = rs.randint(1, seq_len - 1)
        tok[i, :n + 2] = [layout.bos, *rs.randint(0, text_vocab, n).tolist(), layout.eos]
    ones = np.ones((b, seq_len), bool)
    return dict(tokens=tok, key_mask=ones, target_mask=ones.copy())


def _mmu_rows(rs, layout, b, seq_len, n_img):
    text_vocab = min(layout.specials.values())
    tok = np.full((b, seq_len), layout.eos, np.int32)
    tgt = np.zeros((b, seq_len), bool)
    for i in range(b):
        img = (layout.image_offset + rs.randint(0, layout.codebook_size, n_img)).tolist()
        room = seq_len - n_img - 3
        q = rs.randint(1, max(2, room // 2))
        prompt = [layout.bos, layout.start_header, *rs.randint(0, text_vocab, q).tolist(),
                  layout.end_header]
        a = rs.randint(1, max(2, room - len(prompt)))
        answer = [*rs.randint(0, text_vocab, a).tolist(), layout.eos]
        row = ([layout.mmu, layout.soi, *img, layout.eoi] + prompt + answer)[:seq_len]
        tok[i, :len(row)] = row
        p_end = min(3 + n_img + len(prompt), seq_len)
        tgt[i, p_end:] = True
    return dict(tokens=tok, key_mask=np.ones((b, seq_len), bool), target_mask=tgt)


class SyntheticSource:
    """Iterator of host-local batches; `get_state()`/`set_state()` give exact resumption."""

    def __init__(self, config, layout, process_index: int = 0, process_count: int = 1):
        self.config, self.layout = config, layout
        self.step = 0
        self.process_index, self.process_count = process_index, process_count
        self.seed = int(config.data.get("seed", 0))
        self.max_text_len = int(config.data.get("max_text_len", max(4, config.seq_len // 4)))

    def __iter__(self):
        return self

    def __next__(self):
        c = self.config
        rs = np.random.RandomState([self.seed, self.step, self.process_index])
        n_img = c.seq_len - self.max_text_len - 3
        out = {}
        for name, t in c.tasks.items():
            if t.batch_size <= 0:
                continue
            if t.batch_size % self.process_count:
                raise ValueError(f"config.tasks.{name}.batch_size={t.batch_size} is not divisible "
                                 f"by the {self.process_count} processes")
            b = t.batch_size // self.process_count
            kind = t.objective
            if kind == "image_mask":
                out[name] = _t2i_rows(rs, self.layout, b, c.seq_len, self.max_text_len)
            elif kind == "text_lm":
                out[name] = _lm_rows(rs, self.layout, b, c.seq_len)
            else:
                out[name] = _mmu_rows(rs, self.layout, b, c.seq_len, max(1, n_img // 2))
        self.step += 1
        return out

    def get_state(self):
        return {"step": self.step}

    def set_state(self, state):
        self.step = int(state["step"])

    def stats(self):
        return {}


@register_batch_source("synthetic")
def build(config, layout, *, process_index=0, process_count=1, **_):
    return SyntheticSource(config, layout, process_index, process_count)
