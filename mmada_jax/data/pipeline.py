"""The grain input pipeline: batch sources 'shapesworld' and 'mixture'.

Per task (config.tasks order; objective image_mask -> t2i rows, text_lm -> lm rows, text_answer ->
mmu rows) a mixture of components, each:
  source -> host shard [process_index::process_count] -> shuffle(seed) -> repeat -> RowMaker
and then `IterDataset.mix` (weights; every component keeps its own position in the state) ->
RowBatcher (pad or pack, skip and count bad rows). The tasks are zipped and run in
`num_workers` worker processes (`mp_prefetch`). In the main process, image codes are computed for
rows that carry pixels (`codes_fn`, e.g. a jitted MAGVIT encoder) and written into the rows.
Batches are host-local numpy dicts per docs/CONTRACTS.md.

config.data keys read (see `data_config()` for defaults):
  source            'shapesworld' (default components below fill any task without a mixture
                    entry) or 'mixture' (every task needs config.data.mixture.<task>).
  seed              pipeline seed (shuffles, caption dropout, generated questions).
  shuffle           shuffle each component's records.
  num_workers       grain worker processes (0: in the main process); prefetch: per-worker buffer.
  read_threads      threads per process reading records.
  data_dir          where the ShapesWorld TFDS build lives; build_if_missing builds it there.
  image_size        pixels (square) fed to codes_fn; num_image_tokens V = code grid cells.
  max_text_len      t2i caption budget (the t2i row is max_text_len + V + 3 <= config.seq_len).
  caption_dropout   probability a t2i caption is dropped (training only; `train`).
  think_prompt      prepend the thinking instruction to the user turn of CoT examples.
  readback_prob     share of image rows of mmu tasks (training only) made 'readback' rows: no
                    image (mask placeholders), a random prefix of at least readback_min_prefix
                    of the answer visible, the rest scored (`rows.readback_segment`);
                    readback_cut 'uniform' (the prefix ends at any token), 'sentence' (after
                    any whole sentence of the answer: `rows.sentence_cuts`) or 'first_sentence'
                    (after the first one past readback_min_prefix).
                    `config.tasks.<task>.readback_prob` overrides it per task (e.g. 0 for a task
                    of salient rows only).
  salient_prob      share of the other image rows of mmu tasks (training only) made 'salient'
                    rows: only the answer's `salient_words` (e.g. colors and shapes) are
                    targets, the rest of the answer visible, eos pads unscored
                    (`rows.salient_segment`): the image is the only place those words can be
                    read from. `config.tasks.<task>.salient_prob` overrides it per task (a task
                    of salient rows only, trained with `text_answer_full`).
  pack              comma-separated text tasks to pack (segment_ids), e.g. 'lm' (text_lm rows or
                    text_answer chats without images; a packed image row is a named error).
  chat_pack_len     0: a chat in a packed task keeps its own eos-padded row; N > 0: chats shorter
                    than N are eos-padded to exactly N tokens and packed (several per row).
  tokenizer         'byte' (a byte-level encoder for small custom layouts) when no tokenizer is
                    passed to the builder.
  shapesworld       {use_tfds, split, num_train, num_test, knowledge_fraction, arith_max_steps,
                    arith_max_start, arith_max_add, arith_cot ('full' | 'equations'),
                    vqa_cot (a registered style: vqa_cot.py), vqa_kind_weights / vqa_count_weights
                    ({name: weight}: how often each training question kind / count target is
                    asked; {} uniform), vqa_count_repeats (share of one-color / one-shape
                    counts asked about a color or shape the scene holds twice or more; 0 none),
                    max_objects, caption_style}.
  components        name -> {kind: shapesworld|jsonl|image_caption|text, ...kind's args,
                    codes_cache: path prefix of a CodeCache ('' for none)}.
  mixture           task -> {component name: weight}.
"""

from __future__ import annotations

import collections
import logging
import zlib

import grain
import ml_collections
import numpy as np

from mmada_jax.data import register_batch_source
from mmada_jax.data import batching, codes as codes_lib, readers, rows as rows_lib
from mmada_jax.data.shapesworld import language as sw_language
from mmada_jax.data.shapesworld import reasoning as sw_reasoning
from mmada_jax.data.shapesworld import tasks as sw_tasks

log = logging.getLogger(__name__)

SW_DEFAULT_MIXTURE = {"t2i": {"sw_t2i": 1.0}, "lm": {"sw_corpus": 0.6, "sw_arith": 0.4},
                      "mmu": {"sw_vqa": 1.0}}
SW_DEFAULT_COMPONENTS = {"sw_t2i": "t2i", "sw_vqa": "vqa", "sw_caption": "caption",
                         "sw_corpus": "corpus",
                         "sw_arith": "arith", "sw_facts": "facts"}


def data_config() -> ml_collections.ConfigDict:
    """Defaults for `config.data` (ShapesWorld at 64 px); experiments override fields."""
    return ml_collections.ConfigDict(dict(
        source="shapesworld", seed=0, shuffle=True, train=True, num_workers=0, prefetch=2,
        read_threads=1, data_dir="~/.cache/mmada_jax/data", build_if_missing=True,
        image_size=64, num_image_tokens=16, max_text_len=32, caption_dropout=0.1, pack="",
        chat_pack_len=0, think_prompt=True, readback_prob=0.0, readback_min_prefix=0.5,
        readback_cut="uniform", salient_prob=0.0, salient_words=[],
        tokenizer="byte",
        shapesworld=dict(use_tfds=True, split="train", num_train=20000, num_test=1000,
                         knowledge_fraction=0.2, arith_max_steps=3, arith_max_start=20,
                         arith_max_add=15, arith_cot="full", vqa_cot="inventory",
                         vqa_kind_weights={}, vqa_count_weights={}, vqa_count_repeats=0.0,
                         max_objects=4,
                         caption_style="varied"),
        components={}, mixture={},
    ))


class ByteEncoder:
    """`encode(str) -> list[int]`: UTF-8 bytes (ids 0..255), no specials; for custom layouts."""

    def __call__(self, text: str) -> list:
        return list(text.encode("utf-8"))

    def encode(self, text: str) -> list:
        return self(text)


def _encoder(tokenizer, data_cfg, layout):
    if tokenizer is not None:
        return tokenizer.encode if hasattr(tokenizer, "encode") else tokenizer
    if data_cfg.get("tokenizer", "byte") == "byte":
        if min(layout.specials.values()) < 256:
            raise ValueError("config.data.tokenizer='byte' needs a layout whose specials start at "
                             "256 or above (TokenLayout.custom(256, ...)); pass tokenizer=")
        return ByteEncoder()
    raise ValueError(f"config.data.tokenizer={data_cfg.tokenizer!r}: pass tokenizer= to the "
                     "batch-source builder (the pipeline only builds the 'byte' encoder itself)")


def _get(cfg, key, default):
    return cfg[key] if key in cfg else default


def make_component(name: str, spec, d):
    """Component object for config.data.components.<name> (or a ShapesWorld default)."""
    spec = dict(spec.to_dict() if hasattr(spec, "to_dict") else spec)
    kind = spec.pop("kind", "shapesworld")
    spec.pop("codes_cache", None)
    if kind == "shapesworld":
        sw = d.shapesworld
        kind_weights, count_weights = sw_language.question_weights(d)
        kw = dict(split=sw.split, data_dir=d.data_dir, use_tfds=sw.use_tfds,
                  build_if_missing=d.build_if_missing, image_size=d.image_size,
                  num_train=sw.num_train, num_test=sw.num_test, seed=_get(sw, "seed", 0),
                  knowledge_fraction=sw.knowledge_fraction,
                  max_objects=int(_get(sw, "max_objects", 4)),
                  arith_cot=sw_reasoning.cot_style(d), vqa_cot=sw_language.vqa_cot_style(d),
                  vqa_kind_weights=kind_weights, vqa_count_weights=count_weights,
                  vqa_count_repeats=sw_language.count_repeats(d),
                  caption_style=sw_language.caption_style(d),
                  **{f"arith_{k}": v for k, v in sw_reasoning.difficulty(d).items()})
        kw.update(spec)
        return sw_tasks.ShapesWorldComponent(**kw)
    if kind == "jsonl":
        return readers.JsonlComponent(**spec)
    if kind == "image_caption":
        return readers.ImageCaptionComponent(**spec)
    if kind == "text":
        return readers.TextComponent(**spec)
    raise ValueError(f"config.data.components.{name}.kind={kind!r}: known kinds are "
                     "shapesworld, jsonl, image_caption, text")


def _mixture(config) -> dict:
    d = config.data
    mix = {t: dict(w) for t, w in _get(d, "mixture", {}).items()}
    comps = {n: dict(c) for n, c in _get(d, "components", {}).items()}
    for task, t in config.tasks.items():
        if t.batch_size <= 0 or task in mix:
            continue
        if d.source != "shapesworld":
            raise ValueError(f"config.data.mixture.{task} is missing (source {d.source!r} needs a "
                             "mixture for every task with batch_size > 0)")
        kind = batching.row_kind(t.objective)
        if kind is None:
            raise ValueError(f"config.tasks.{task}.objective={t.objective!r}: not a registered "
                             f"objective")
        default = SW_DEFAULT_MIXTURE.get(task) or SW_DEFAULT_MIXTURE[kind]
        mix[task] = dict(default)
    for task, w in mix.items():
        for n in w:
            if n not in comps:
                if n not in SW_DEFAULT_COMPONENTS:
                    raise ValueError(f"config.data.mixture.{task}: component {n!r} is not in "
                                     f"config.data.components ({sorted(comps)})")
                comps[n] = dict(kind="shapesworld", task=SW_DEFAULT_COMPONENTS[n])
    return mix, comps


def _seed(base: int, *parts) -> int:
    return (int(base) * 1000003 + zlib.crc32("/".join(map(str, parts)).encode())) % (2 ** 31)


def build_dataset(config, layout, *, tokenizer=None, process_index=0, process_count=1):
    """The grain IterDataset yielding tuples of per-task batches (before image coding)."""
    d = config.data
    encode = _encoder(tokenizer, d, layout)
    mix, comps = _mixture(config)
    v = int(d.num_image_tokens)
    grid = int(round(v ** 0.5))
    code_grid = (grid, grid) if grid * grid == v else (v,)
    packed = {t.strip() for t in str(_get(d, "pack", "")).split(",") if t.strip()}
    task_ds, names = [], []
    for task, t in config.tasks.items():
        if t.batch_size <= 0:
            continue
        if t.batch_size % process_count:
            raise ValueError(f"config.tasks.{task}.batch_size={t.batch_size} is not divisible by "
                             f"the {process_count} processes")
        kind = batching.row_kind(t.objective)
        if kind is None:
            from mmada_jax.objectives import objective_names
            raise ValueError(f"config.tasks.{task}.objective={t.objective!r}: unknown; registered "
                             f"objectives: {objective_names()}")
        if kind == "t2i" and rows_lib.t2i_length(d.max_text_len, v) > config.seq_len:
            raise ValueError(f"config.seq_len={config.seq_len} < max_text_len + num_image_tokens "
                             f"+ 3 = {rows_lib.t2i_length(d.max_text_len, v)}")
        if task in packed and kind == "t2i":
            raise ValueError(f"config.data.pack: only text rows can be packed, not the t2i task "
                             f"{task!r}")
        parts, weights = {}, {}
        for cname, w in mix[task].items():
            comp = make_component(cname, comps[cname], d)
            if comp.produces not in batching.ACCEPTS[kind]:
                raise ValueError(f"config.data.mixture.{task}: component {cname} produces "
                                 f"{comp.produces!r} examples, a {kind} task takes "
                                 f"{batching.ACCEPTS[kind]}")
            cache_path = comps[cname].get("codes_cache", "")
            cache = codes_lib.CodeCache(cache_path) if cache_path else None
            seed = _seed(d.seed, process_index, task, cname)
            ds = grain.MapDataset.source(comp.source())
            if process_count > 1:
                ds = ds[process_index::process_count]
            if _get(d, "shuffle", True):
                ds = ds.shuffle(seed=seed)
            ds = ds.repeat().random_map(batching.RowMaker(
                cname, comp, kind, layout, encode, seq_len=config.seq_len,
                max_text_len=int(d.max_text_len), num_image_tokens=v,
                image_size=int(d.image_size), caption_dropout=float(d.caption_dropout),
                train=bool(_get(d, "train", True)), code_grid=code_grid, code_cache=cache,
                think_prompt=bool(_get(d, "think_prompt", True)),
                readback_prob=float(_get(t, "readback_prob", _get(d, "readback_prob", 0.0))),
                readback_min_prefix=float(_get(d, "readback_min_prefix", 0.5)),
                readback_cut=str(_get(d, "readback_cut", "uniform")),
                salient_prob=float(_get(t, "salient_prob", _get(d, "salient_prob", 0.0))),
                salient_words=tuple(_get(d, "salient_words", ()) or ())),
                seed=seed + 1)
            parts[cname] = ds.to_iter_dataset(grain.ReadOptions(
                num_threads=int(_get(d, "read_threads", 1)), prefetch_buffer_size=8))
            weights[cname] = float(w)
        mixed = grain.IterDataset.mix(parts, weights) if len(parts) > 1 else next(
            iter(parts.values()))
        task_ds.append(batching.RowBatcher(
            mixed, task=task, batch_size=t.batch_size // process_count, seq_len=config.seq_len,
            layout=layout, pack=task in packed, with_image=kind in ("t2i", "mmu"),
            chat_len=int(_get(d, "chat_pack_len", 0))))
        names.append(task)
    if not task_ds:
        raise ValueError("config.tasks: no task has batch_size > 0")
    ds = grain.experimental.ZipIterDataset(task_ds)
    workers = int(_get(d, "num_workers", 0))
    if workers > 0:
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(
            num_workers=workers, per_worker_buffer_size=int(_get(d, "prefetch", 2))))
    return ds, names


class BatchSource:
    """Host-local batches with image tokens filled in; `get_state`/`set_state` (JSON) and
    `stats()` (cumulative counters for the train metrics)."""

    def __init__(self, ds, names, layout, codes_fn, log_first: int = 5):
        self._ds, self.names, self.layout, self.codes_fn = ds, names, layout, codes_fn
        self._it = iter(ds)
        self._stats = collections.Counter()
        self._logged = 0
        self._log_first = log_first

    def __iter__(self):
        return self

    def __next__(self):
        parts = next(self._it)
        out = {}
        for name, b in zip(self.names, parts):
            self._stats.update(b.pop("stats"))
            for m in b.pop("messages"):
                if self._logged < self._log_first:
                    log.warning("data: skipped a bad example: %s", m)
                    self._logged += 1
            image, codes = b.pop("image", None), b.pop("codes", None)
            starts = b.pop("image_start")
            if image is not None:
                self._fill(b, image, codes, starts)
            out[name] = b
        self._stats["batches"] += 1
        return out

    def _fill(self, b, image, codes, starts):
        need = (starts >= 0) & (codes.reshape(len(codes), -1)[:, 0] < 0)
        if need.any():
            if self.codes_fn is None:
                raise ValueError("rows carry pixels but no codes_fn was given (pass codes_fn= "
                                 "or use a code cache)")
            new = np.asarray(self.codes_fn(image[need]))
            if new.reshape(len(new), -1).shape[1] != codes.reshape(len(codes), -1).shape[1]:
                raise ValueError(f"codes_fn gave {new.shape[1:]} codes per image; "
                                 f"config.data.num_image_tokens expects {codes.shape[1:]}")
            codes = codes.copy()
            codes[need] = new.reshape(codes[need].shape)
        rows_lib.fill_image_tokens(dict(tokens=b["tokens"], image_start=starts),
                                   np.where(starts[:, None] >= 0, codes.reshape(len(codes), -1), 0),
                                   self.layout)

    def get_state(self):
        return {"iterator": _jsonable(self._it.get_state()), "stats": dict(self._stats)}

    def set_state(self, state):
        self._it.set_state(_from_jsonable(state["iterator"]))
        self._stats = collections.Counter(state.get("stats", {}))

    def stats(self) -> dict:
        """Cumulative counters: batches, rows/<task>/<component>, skipped/<reason>,
        truncated/<task>."""
        return dict(self._stats)

    def close(self):
        close = getattr(self._it, "close", None)
        if close:
            close()


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, bytes):
        return {"__bytes__": x.hex()}
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def _from_jsonable(x):
    if isinstance(x, dict):
        if set(x) == {"__bytes__"}:
            return bytes.fromhex(x["__bytes__"])
        return {k: _from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_from_jsonable(v) for v in x]
    return x


def _build(config, layout, *, tokenizer=None, codes_fn=None, process_index=0, process_count=1):
    ds, names = build_dataset(config, layout, tokenizer=tokenizer, process_index=process_index,
                              process_count=process_count)
    return BatchSource(ds, names, layout, codes_fn)


@register_batch_source("shapesworld")
def build_shapesworld(config, layout, **kwargs):
    """ShapesWorld defaults for every task without a config.data.mixture entry."""
    return _build(config, layout, **kwargs)


@register_batch_source("mixture")
def build_mixture(config, layout, **kwargs):
    """Components and ratios from config.data.components / config.data.mixture."""
    return _build(config, layout, **kwargs)
