"""Input throughput (rows/s per task) of the grain pipeline on this machine.

    python benchmarks/data_bench.py [--workers 0] [--batches 20]

ShapesWorld rows at 64 px (t2i, mmu with the pool-quantize stand-in codes_fn, lm), from the TFDS
build (built on first use under /tmp) and rendered on the fly; and JSONL chat rows.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from absl import flags

from mmada_jax.config import base_config
from mmada_jax.data import build_batch_source, pipeline
from mmada_jax.data.codes import PoolQuantize
from mmada_jax.token_layout import TokenLayout


def config(task, *, workers, use_tfds, data_dir, seq_len=512, batch=16):
    c = base_config()
    c.seq_len = seq_len
    c.data = pipeline.data_config()
    c.data.update(dict(image_size=64, num_image_tokens=64, max_text_len=128, num_workers=workers,
                       data_dir=data_dir))
    c.data.shapesworld.use_tfds = use_tfds
    c.data.shapesworld.num_train = 2000
    c.data.shapesworld.num_test = 100
    for t in c.tasks:
        c.tasks[t].batch_size = batch if t == task else 0
    return c


def rows_per_s(cfg, layout, batches):
    src = build_batch_source(cfg, layout, codes_fn=PoolQuantize(8, 64))
    next(src)  # warm-up (worker start, first reads)
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        b = next(src)
        n += sum(len(v["tokens"]) for v in b.values())
    dt = time.perf_counter() - t
    src.close()
    return n / dt


def main():
    flags.FLAGS.mark_as_parsed()
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "mmada_bench_data"))
    a = p.parse_args()
    layout = TokenLayout.custom(256, 64)
    out = []
    for workers in a.workers:
        for task in ("t2i", "mmu", "lm"):
            for tfds_ in ((True, False) if task != "lm" else (False,)):
                cfg = config(task, workers=workers, use_tfds=tfds_, data_dir=a.data_dir)
                r = rows_per_s(cfg, layout, a.batches)
                out.append(dict(task=task, source="tfds" if tfds_ else "procedural",
                                workers=workers, rows_per_s=round(r, 1)))
                print(json.dumps(out[-1]), flush=True)


if __name__ == "__main__":
    main()
