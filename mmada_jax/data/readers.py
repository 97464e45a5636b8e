"""Readers for real data, as pipeline components: a random-access `source()` of raw records and
`example(raw, rng)` that parses one into a normalized example (raising on bad data, which the
pipeline skips and counts).

Normalized examples:
- `{"kind": "t2i", "caption": str, "image": uint8 [H, W, 3]}`
- `{"kind": "chat", "messages": [{"role", "content"}, ...], "think": bool, "image"?: uint8}`;
  the last message is the assistant answer.
- `{"kind": "text", "text": str}`

Formats:
- `JsonlComponent`: JSONL files; `format` alpaca (`instruction`, `input`, `output`), cot
  (`question|prompt|problem`, `reasoning|cot|thinking`, `answer`: the answer becomes
  `<think> reasoning </think> answer`), llava (`conversations` of `from`/`value` turns with an
  optional `image` path under `image_root`; `<image>` tags removed), text (`text`), or auto.
- `ImageCaptionComponent`: a folder of images with `captions.jsonl` (`{"file", "caption"}`) or
  `captions.tsv` (file<TAB>caption) or a `<stem>.txt` beside each image; or tar shards whose
  members pair `<key>.<jpg|png|...>` with `<key>.txt` (webdataset style).
- `TextComponent`: `.txt` files (documents separated by blank lines) or `.parquet` files (a text
  column).
"""

from __future__ import annotations

import functools
import glob
import json
import os
import tarfile

import numpy as np

from mmada_jax.data import images as image_lib

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


class BadRecord(ValueError):
    """A record that cannot be parsed (reason in the message)."""


def _paths(pattern: str) -> list[str]:
    out = sorted(glob.glob(os.path.expanduser(pattern)))
    if not out:
        raise FileNotFoundError(f"no files match {pattern!r}")
    return out


# ---------------------------------------------------------------------------- JSONL
class LineSource:
    """Random access to the non-empty lines of text files: item = (path, line_no, bytes)."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.files = _paths(pattern)
        index = []
        for fi, p in enumerate(self.files):
            with open(p, "rb") as f:
                off, ln = 0, 0
                for line in f:
                    if line.strip():
                        index.append((fi, ln, off, len(line)))
                    off += len(line)
                    ln += 1
        self.index = np.asarray(index, np.int64).reshape(-1, 4)

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        fi, ln, off, n = (int(v) for v in self.index[int(i)])
        with open(self.files[fi], "rb") as f:
            f.seek(off)
            return (self.files[fi], ln + 1, f.read(n))

    def __repr__(self):
        return f"LineSource({self.pattern})"


def _first(d: dict, keys, where: str):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    raise BadRecord(f"{where}: missing field (one of {list(keys)})")


def _detect(d: dict) -> str:
    if "conversations" in d:
        return "llava"
    if "instruction" in d:
        return "alpaca"
    if any(k in d for k in ("reasoning", "cot", "thinking")):
        return "cot"
    if "text" in d:
        return "text"
    raise BadRecord(f"unknown record format with keys {sorted(d)[:8]}")


class JsonlComponent:
    """Instruction / CoT / LLaVA / text JSONL files."""

    FORMATS = ("auto", "alpaca", "cot", "llava", "text")

    def __init__(self, path: str, format: str = "auto", image_root: str = "",
                 think: bool | None = None):
        if format not in self.FORMATS:
            raise ValueError(f"jsonl component {path}: format {format!r} unknown; "
                             f"known {self.FORMATS}")
        self.path, self.format, self.image_root, self.think = path, format, image_root, think

    @property
    def produces(self) -> str:
        return "text" if self.format == "text" else "chat"

    def source(self):
        return LineSource(self.path)

    def example(self, raw, rng) -> dict:
        path, line_no, data = raw
        where = f"{path}:{line_no}"
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRecord(f"{where}: malformed JSON ({e})") from e
        if not isinstance(d, dict):
            raise BadRecord(f"{where}: expected a JSON object")
        fmt = _detect(d) if self.format == "auto" else self.format
        if fmt == "text":
            return dict(kind="text", text=str(_first(d, ("text",), where)))
        if fmt == "alpaca":
            inst = str(_first(d, ("instruction",), where))
            extra = d.get("input") or ""
            user = inst + ("\n\n" + extra if extra else "")
            return dict(kind="chat", think=bool(self.think), messages=[
                dict(role="user", content=user),
                dict(role="assistant", content=str(_first(d, ("output",), where)))])
        if fmt == "cot":
            q = str(_first(d, ("question", "prompt", "problem"), where))
            r = str(_first(d, ("reasoning", "cot", "thinking"), where))
            a = str(_first(d, ("answer", "solution"), where))
            return dict(kind="chat", think=True if self.think is None else self.think, messages=[
                dict(role="user", content=q),
                dict(role="assistant", content=f"<think> {r.strip()} </think> {a.strip()}")])
        return self._llava(d, where)

    def _llava(self, d: dict, where: str) -> dict:
        conv = d.get("conversations")
        if not isinstance(conv, list) or len(conv) < 2:
            raise BadRecord(f"{where}: 'conversations' must be a list of at least 2 turns")
        roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                 "system": "system"}
        msgs = []
        for t in conv:
            if not isinstance(t, dict) or t.get("from") not in roles or "value" not in t:
                raise BadRecord(f"{where}: bad turn {str(t)[:80]}")
            text = str(t["value"]).replace("<image>\n", "").replace("\n<image>", "")
            msgs.append(dict(role=roles[t["from"]], content=text.replace("<image>", "").strip()))
        while msgs and msgs[-1]["role"] != "assistant":
            msgs.pop()
        if len(msgs) < 2:
            raise BadRecord(f"{where}: no assistant answer")
        ex = dict(kind="chat", think=bool(self.think), messages=msgs)
        if d.get("image"):
            p = os.path.join(os.path.expanduser(self.image_root), d["image"])
            try:
                ex["image"] = image_lib.load(p)
            except FileNotFoundError as e:
                raise FileNotFoundError(f"{where}: missing image file {p}") from e
            except image_lib.BadImage as e:
                raise image_lib.BadImage(f"{where}: {p}: {e}") from e
        return ex

    def __repr__(self):
        return f"Jsonl({self.path},{self.format},{self.image_root},{self.think})"


# ---------------------------------------------------------------------------- image + caption
class ImageCaptionSource:
    """Items: (name, image bytes or None, caption or None) from a folder or tar shards."""

    def __init__(self, path: str):
        self.path = path
        self.items = []  # (kind, file, offset, size, caption, name)
        p = os.path.expanduser(path)
        if os.path.isdir(p):
            self._index_folder(p)
        else:
            for t in _paths(p):
                self._index_tar(t)
        if not self.items:
            raise FileNotFoundError(f"image-caption source {path}: no images found")

    def _index_folder(self, root: str):
        caps = {}
        jl, tsv = os.path.join(root, "captions.jsonl"), os.path.join(root, "captions.tsv")
        if os.path.exists(jl):
            with open(jl) as f:
                for line in f:
                    try:
                        d = json.loads(line)
                        caps[d["file"]] = d["caption"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # an unreadable caption line leaves its image captionless
        elif os.path.exists(tsv):
            with open(tsv) as f:
                for line in f:
                    if "\t" in line:
                        k, v = line.rstrip("\n").split("\t", 1)
                        caps[k] = v
        for name in sorted(os.listdir(root)):
            if os.path.splitext(name)[1].lower() not in IMAGE_EXTS:
                continue
            cap = caps.get(name)
            side = os.path.join(root, os.path.splitext(name)[0] + ".txt")
            if cap is None and os.path.exists(side):
                with open(side, encoding="utf-8", errors="replace") as f:
                    cap = f.read().strip()
            self.items.append(("file", os.path.join(root, name), 0, 0, cap, name))

    def _index_tar(self, tar_path: str):
        groups = {}
        with tarfile.open(tar_path) as tf:
            for m in tf.getmembers():
                if not m.isfile():
                    continue
                key, ext = os.path.splitext(m.name)
                g = groups.setdefault(key, {})
                if ext.lower() in IMAGE_EXTS:
                    g["image"] = (m.offset_data, m.size)
                elif ext.lower() == ".txt":
                    g["caption"] = tf.extractfile(m).read().decode("utf-8", "replace").strip()
        for key in sorted(groups):
            g = groups[key]
            if "image" in g:
                off, size = g["image"]
                self.items.append(("tar", tar_path, off, size, g.get("caption"), key))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        kind, f, off, size, cap, name = self.items[int(i)]
        if kind == "file":
            if not os.path.exists(f):
                return (f, None, cap)
            with open(f, "rb") as fh:
                return (f, fh.read(), cap)
        with open(f, "rb") as fh:
            fh.seek(off)
            return (f"{f}:{name}", fh.read(size), cap)

    def __repr__(self):
        return f"ImageCaptionSource({self.path})"


class ImageCaptionComponent:
    """Image-caption pairs for t2i (or, with `as_chat`, captioning as an mmu conversation)."""

    def __init__(self, path: str, as_chat: bool = False,
                 prompt: str = "Describe the image."):
        self.path, self.as_chat, self.prompt = path, as_chat, prompt

    @property
    def produces(self) -> str:
        return "chat" if self.as_chat else "t2i"

    def source(self):
        return ImageCaptionSource(self.path)

    def example(self, raw, rng) -> dict:
        where, data, cap = raw
        if data is None:
            raise FileNotFoundError(f"{where}: missing image file")
        if not cap:
            raise BadRecord(f"{where}: no caption")
        try:
            img = image_lib.decode(data)
        except image_lib.BadImage as e:
            raise image_lib.BadImage(f"{where}: {e}") from e
        if self.as_chat:
            return dict(kind="chat", think=False, image=img, messages=[
                dict(role="user", content=self.prompt), dict(role="assistant", content=cap)])
        return dict(kind="t2i", caption=cap, image=img)

    def __repr__(self):
        return f"ImageCaption({self.path},{self.as_chat},{self.prompt})"


# ---------------------------------------------------------------------------- plain text
class TextSource:
    """Documents from .txt files (split on blank lines) or .parquet files (one row each)."""

    def __init__(self, pattern: str, column: str = "text"):
        self.pattern, self.column = pattern, column
        self.files = _paths(pattern)
        index = []  # (file, a, b): txt byte range, or parquet (row group, row)
        for fi, p in enumerate(self.files):
            if p.endswith(".parquet"):
                import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
                md = pq.ParquetFile(p).metadata
                if column not in md.schema.names:
                    raise ValueError(f"{p}: no column {column!r} (columns: {md.schema.names})")
                for rg in range(md.num_row_groups):
                    index += [(fi, rg, r) for r in range(md.row_group(rg).num_rows)]
            else:
                with open(p, "rb") as f:
                    off, start = 0, None
                    for line in f:
                        if line.strip():
                            start = off if start is None else start
                        elif start is not None:
                            index.append((fi, start, off))
                            start = None
                        off += len(line)
                    if start is not None:
                        index.append((fi, start, off))
        self.index = np.asarray(index, np.int64).reshape(-1, 3)

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        fi, a, b = (int(v) for v in self.index[int(i)])
        p = self.files[fi]
        if p.endswith(".parquet"):
            return (f"{p}:rg{a}:{b}", _row_group(p, a, self.column)[b])
        with open(p, "rb") as f:
            f.seek(a)
            return (f"{p}@{a}", f.read(b - a))

    def __repr__(self):
        return f"TextSource({self.pattern},{self.column})"


@functools.lru_cache(maxsize=4)
def _row_group(path: str, rg: int, column: str) -> list:
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    return pq.ParquetFile(path).read_row_group(rg, columns=[column]).column(0).to_pylist()


class TextComponent:
    """Plain text for the lm task."""

    produces = "text"

    def __init__(self, path: str, column: str = "text"):
        self.path, self.column = path, column

    def source(self):
        return TextSource(self.path, self.column)

    def example(self, raw, rng) -> dict:
        where, data = raw
        if data is None:
            raise BadRecord(f"{where}: null text")
        text = data.decode("utf-8") if isinstance(data, bytes) else str(data)
        if not text.strip():
            raise BadRecord(f"{where}: empty text")
        return dict(kind="text", text=text.strip())

    def __repr__(self):
        return f"Text({self.path},{self.column})"
