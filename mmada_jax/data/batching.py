"""Per-example row making and per-task batching, as grain transforms that run in worker processes.

`RowMaker(component, ...)(raw, rng)` turns one raw record into a row segment for its task, or into
a skip marker `{"_skip": reason, "_msg": message}` when the record is bad (bad data never raises).
`RowBatcher` pads (or packs) segments into `seq_len` rows and stacks `batch_size` of them; each
batch carries `stats` (skip reasons, truncations, rows per component) for the train metrics. Its
iterator state is its parent's, taken before any example it holds back, so a restore is exact.
"""

from __future__ import annotations

import collections
import json

import grain
import numpy as np

from mmada_jax.data import images as image_lib
from mmada_jax.data import rows as rows_lib

MAX_CONSECUTIVE_SKIPS = 1000


def row_kind(objective: str) -> str | None:
    """The rows an objective scores ('t2i', 'lm', 'mmu'), as it registered them
    (`mmada_jax.objectives.register_objective(name, rows=...)`); None for an unknown name."""
    from mmada_jax import objectives
    return objectives.objective_rows(objective)


# Example kinds a row type accepts.
ACCEPTS = {"t2i": ("t2i",), "lm": ("text", "chat"), "mmu": ("chat",)}


def skip_reason(e: Exception) -> str:
    if isinstance(e, image_lib.BadImage):
        return "bad_image"
    if isinstance(e, FileNotFoundError):
        return "missing_file"
    if isinstance(e, rows_lib.RowTooLong):
        return "too_long"
    if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):
        return "malformed"
    if type(e).__name__ == "BadRecord":
        return "malformed"
    return f"error_{type(e).__name__}"


# where a readback row's visible answer prefix ends: at any token, after any whole sentence of
# the answer, or after its first whole sentence (past readback_min_prefix; `rows.sentence_cuts`)
READBACK_CUTS = ("uniform", "sentence", "first_sentence")


class RowMaker:
    """Raw record -> row segment for a task (module-level and picklable for worker processes)."""

    def __init__(self, name: str, component, row_kind: str, layout, encode, *, seq_len: int,
                 max_text_len: int, num_image_tokens: int, image_size: int,
                 caption_dropout: float, train: bool, code_grid: tuple, code_cache=None,
                 think_prompt: bool = True, readback_prob: float = 0.0,
                 readback_min_prefix: float = 0.5, readback_cut: str = "uniform",
                 salient_prob: float = 0.0, salient_words=()):
        self.name, self.component, self.row_kind = name, component, row_kind
        self.layout, self.encode = layout, encode
        self.seq_len, self.max_text_len = seq_len, max_text_len
        self.num_image_tokens, self.image_size = num_image_tokens, image_size
        self.caption_dropout, self.train = caption_dropout, train
        self.code_grid, self.code_cache = tuple(code_grid), code_cache
        self.with_image = row_kind in ("t2i", "mmu")
        self.think_prompt = think_prompt
        if not 0.0 <= readback_prob <= 1.0:
            raise ValueError(f"readback_prob={readback_prob} not in [0, 1] (component {name}: "
                             "config.data.readback_prob or its task's own)")
        if not 0.0 <= readback_min_prefix < 1.0:
            raise ValueError(f"config.data.readback_min_prefix={readback_min_prefix} not in [0, 1)")
        if readback_cut not in READBACK_CUTS:
            raise ValueError(f"config.data.readback_cut={readback_cut!r}: known {READBACK_CUTS}")
        self.readback_prob, self.readback_min_prefix = readback_prob, readback_min_prefix
        self.readback_cut = readback_cut
        if not 0.0 <= salient_prob <= 1.0:
            raise ValueError(f"salient_prob={salient_prob} not in [0, 1] (component {name}: "
                             "config.data.salient_prob or its task's own)")
        if salient_prob > 0 and not salient_words:
            raise ValueError("config.data.salient_prob > 0 needs config.data.salient_words")
        self.salient_prob = salient_prob
        # each word as the tokenizer writes it inside a sentence, after a space (a word-piece
        # tokenizer's "▁red"; a byte tokenizer's " red" also matches the start of " reddish")
        self.salient_patterns = sorted({tuple(encode(" " + str(w))) for w in salient_words}
                                       - {()})

    def __call__(self, raw, rng: np.random.Generator):
        try:
            ex = self.component.example(raw, rng)
            if ex["kind"] not in ACCEPTS[self.row_kind]:
                raise ValueError(f"component {self.name} gave a {ex['kind']!r} example to a "
                                 f"{self.row_kind} task")
            seg = self._row(ex, raw, rng)
        except Exception as e:  # pylint: disable=broad-except
            return {"_skip": skip_reason(e), "_msg": f"{self.name}: {type(e).__name__}: {e}"}
        seg["_component"] = self.name
        return seg

    def _image(self, ex, raw, seg):
        codes = None
        if self.code_cache is not None:
            codes = self.code_cache[_index_of(raw)]
            if codes is None:
                raise image_lib.BadImage("image marked bad in the code cache")
        if codes is None and ex.get("image") is None:
            raise ValueError("example has no image")
        seg["image"] = (np.zeros((self.image_size, self.image_size, 3), np.float32)
                        if codes is not None else image_lib.preprocess(ex["image"], self.image_size))
        seg["codes"] = (np.asarray(codes, np.int32).reshape(self.code_grid) if codes is not None
                        else np.full(self.code_grid, -1, np.int32))

    def _row(self, ex, raw, rng):
        enc, lay = self.encode, self.layout
        if self.row_kind == "t2i":
            ids = list(enc(ex["caption"]))
            if self.train and rng.random() < self.caption_dropout:
                ids = []
            seg = rows_lib.t2i_row(ids, lay, self.max_text_len, self.num_image_tokens,
                                   self.seq_len)
            seg["truncated"] = len(ids) + 3 > self.max_text_len + 1
            self._image(ex, raw, seg)
            return seg
        if ex["kind"] == "text":
            return rows_lib.lm_segment(enc(ex["text"]), lay, self.seq_len)
        has_image = ex.get("image") is not None or (self.code_cache is not None and
                                                    self.row_kind == "mmu")
        if has_image and self.row_kind != "mmu":
            raise ValueError(f"component {self.name}: image example in a text-only task")
        prompt, answer = rows_lib.conversation_ids(ex["messages"], lay, enc,
                                                   think=bool(ex.get("think")) and self.think_prompt)
        seg = rows_lib.prompt_answer_segment(prompt, answer, lay, self.seq_len,
                                             self.num_image_tokens if has_image else 0)
        if self.with_image:
            if has_image:
                self._image(ex, raw, seg)
                if self.train and self.readback_prob and rng.random() < self.readback_prob:
                    cut = self.readback_cut
                    cuts = (None if cut == "uniform" else rows_lib.sentence_cuts(
                        ex["messages"][-1]["content"], answer, self.encode))
                    rows_lib.readback_segment(seg, len(answer), rng, self.readback_min_prefix,
                                              cuts, first_cut=cut == "first_sentence")
                elif self.train and self.salient_prob and rng.random() < self.salient_prob:
                    rows_lib.salient_segment(seg, answer, self.salient_patterns)
            else:
                seg["image"] = np.zeros((self.image_size, self.image_size, 3), np.float32)
                seg["codes"] = np.full(self.code_grid, -1, np.int32)
        return seg

    def __repr__(self):
        return f"RowMaker({self.name},{self.component!r},{self.row_kind})"


def _index_of(raw) -> int:
    if isinstance(raw, dict) and "index" in raw:
        return int(raw["index"])
    raise ValueError("code cache needs records with an 'index' field")


def _is_answer(seg) -> bool:
    """A prompt/answer (chat) segment: its prompt is unscored. Packing never puts another segment
    right after one's last answer token: the sampler decodes into a fixed-length masked region
    and the model must learn that an answer ends in eos padding, not at a segment boundary (that
    would tell it the answer's length in training and not at inference)."""
    return not bool(np.all(seg["target_mask"]))


def packable(seg, layout, chat_len: int):
    """The segment as it may be packed, or None if it must keep its own eos-padded row.

    Documents pack as they are. A chat packs only with a fixed `chat_len` (> 0): it is eos-padded
    to exactly `chat_len` tokens (pads scored, like a padded row), so its answer still ends in
    eos padding whose length varies with the answer; a chat of `chat_len` tokens or more (no room
    for a pad) keeps its own row."""
    if not _is_answer(seg):
        return seg
    if chat_len <= 0 or len(seg["tokens"]) >= chat_len:
        return None
    out = rows_lib.pad_segment(seg, layout, chat_len)
    out["_component"] = seg.get("_component")
    return out


class RowBatcher(grain.IterDataset):
    """Pads or packs row segments into [batch_size, seq_len] rows; skips and counts bad ones."""

    def __init__(self, parent, *, task: str, batch_size: int, seq_len: int, layout,
                 pack: bool = False, with_image: bool = False, chat_len: int = 0):
        super().__init__(parent)
        if pack and chat_len > seq_len:
            raise ValueError(f"config.data.chat_pack_len={chat_len} exceeds seq_len {seq_len}")
        self.task, self.batch_size, self.seq_len = task, batch_size, seq_len
        self.layout, self.pack, self.with_image = layout, pack, with_image
        self.chat_len = int(chat_len)

    def __iter__(self):
        return _RowBatcherIter(self._parent.__iter__(), self)

    def __str__(self):
        return f"RowBatcher({self.task},{self.batch_size},{self.seq_len},pack={self.pack})"


class _RowBatcherIter(grain.DatasetIterator):
    def __init__(self, parent, cfg: RowBatcher):
        super().__init__(parent)
        self.cfg = cfg
        self._pending = None
        self._pending_state = None

    def _pull(self):
        if self._pending is None:
            self._pending_state = self._parent.get_state()
            self._pending = next(self._parent)
        return self._pending

    def _take(self):
        el, self._pending, self._pending_state = self._pending, None, None
        return el

    def _good(self, stats, msgs):
        """Next non-skipped element (stays pending until `_take`). Only a source with no usable
        example in MAX_CONSECUTIVE_SKIPS (a configuration error, not bad data) raises."""
        for _ in range(MAX_CONSECUTIVE_SKIPS):
            el = self._pull()
            if "_skip" not in el:
                return el
            self._take()
            stats[f"skipped/{el['_skip']}"] += 1
            if len(msgs) < 3:
                msgs.append(el["_msg"])
        raise RuntimeError(f"task {self.cfg.task}: {MAX_CONSECUTIVE_SKIPS} examples in a row were "
                           f"unusable; last: {el['_msg']}")

    def _account(self, el, stats):
        stats[f"rows/{self.cfg.task}/{el['_component']}"] += 1
        if el.get("truncated"):
            stats[f"truncated/{self.cfg.task}"] += 1

    def __next__(self):
        c = self.cfg
        stats, msgs, rows = collections.Counter(), [], []
        while len(rows) < c.batch_size:
            if c.pack:
                el = self._good(stats, msgs)
                self._take()
                self._account(el, stats)
                seg = packable(el, c.layout, c.chat_len)
                if seg is None:  # a chat keeps its own row, eos pads in its segment
                    row = rows_lib.pad_segment(el, c.layout, c.seq_len)
                    row["segment_ids"] = np.ones((c.seq_len,), np.int32)
                    rows.append(row)
                    continue
                segs, used = [seg], len(seg["tokens"])
                while True:  # segments until one does not fit or must keep its own row
                    nxt = packable(self._good(stats, msgs), c.layout, c.chat_len)
                    if nxt is None or used + len(nxt["tokens"]) > c.seq_len:
                        break
                    self._account(self._take(), stats)
                    segs.append(nxt)
                    used += len(nxt["tokens"])
                rows.append(rows_lib.pack_segments(segs, c.layout, c.seq_len))
            else:
                el = self._good(stats, msgs)
                self._take()
                self._account(el, stats)
                row = rows_lib.pad_segment(el, c.layout, c.seq_len)
                if c.with_image:
                    row["image"], row["codes"] = el["image"], el["codes"]
                rows.append(row)
        batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
        batch["stats"] = dict(stats)
        batch["messages"] = msgs
        return batch

    def get_state(self):
        return self._pending_state if self._pending is not None else self._parent.get_state()

    def set_state(self, state):
        self._parent.set_state(state)
        self._pending = self._pending_state = None
