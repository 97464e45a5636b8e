"""The command line shared by the checkpoint probes (`t2i_binding_probe.py`,
`mmu_reading_probe.py`): load a stage workdir's config and checkpoint, run
`probe(ev, split, n)` on the train and test splits, print one JSON line per split."""

from __future__ import annotations

import argparse
import json
import os


def main(probe):
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True, help="a stage workdir (config.json, checkpoints)")
    ap.add_argument("--n", type=int, default=128, help="scenes per split")
    a = ap.parse_args()
    import ml_collections
    from mmada_jax.evaluate import load_for_eval
    with open(os.path.join(a.workdir, "config.json")) as f:
        cfg = ml_collections.ConfigDict(json.load(f))
    ev = load_for_eval(cfg, a.workdir)
    for split in ("train", "test"):
        print(json.dumps(probe(ev, split, a.n) | dict(workdir=a.workdir)), flush=True)
