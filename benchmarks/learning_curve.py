"""Learning curve of one ShapesWorld stage: train in chunks, evaluate after each (held-out test
split), one JSON line per point. For sizing the demo: how many steps a skill needs at a config.

    python benchmarks/learning_curve.py --workdir runs/lc/a --assets runs/demo/assets \
        --stage sft --variant cpu --points 500,1000,2000 --init_from runs/demo/pretrain \
        --overrides 'tasks.t2i.batch_size=0;data.pack=""' --eval n_reasoning=100,n_vqa=0

The assets folder (text and image tokenizers, ShapesWorld build, code cache) is a demo run's
`assets/` for the same variant; it is copied into WORKDIR. Output: WORKDIR/curve.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--stage", default="sft", choices=("pretrain", "sft"))
    ap.add_argument("--variant", default="cpu")
    ap.add_argument("--points", default="500,1000,2000", help="step counts to evaluate at")
    ap.add_argument("--init_from", default="")
    ap.add_argument("--overrides", default="", help="stage config 'key=value;...'")
    ap.add_argument("--eval", default="", help="eval config 'key=value,...'")
    ap.add_argument("--probe", type=int, default=0,
                    help="also run t2i_binding_probe.py on this many scenes per split per point")
    ap.add_argument("--mmu_probe", type=int, default=0,
                    help="also run mmu_reading_probe.py on this many scenes per split per point")
    a = ap.parse_args()

    import jax
    from mmada_jax import assets as assets_lib
    from mmada_jax import demo
    from mmada_jax.config import parse_value
    from mmada_jax.training.loop import train

    os.makedirs(a.workdir, exist_ok=True)
    dst = os.path.join(a.workdir, "assets")
    if not os.path.isdir(dst):
        shutil.copytree(a.assets, dst, ignore=shutil.ignore_patterns("*_run"))
    dc = demo.demo_config(a.variant)
    dc.stage_overrides[a.stage] = a.overrides
    for kv in filter(None, a.eval.split(",")):
        k, v = kv.split("=", 1)
        dc.eval[k] = type(dc.eval[k])(parse_value(v))
    cfgs = {s: demo._stage_config(s, a.variant, a.workdir, dc) for s in demo.STAGES}
    text_tok = assets_lib.text_tokenizer(cfgs["pretrain"])
    image_tok = assets_lib.image_tokenizer(cfgs["pretrain"])
    demo.build_code_caches(cfgs, image_tok, dst)
    cfg = cfgs[a.stage]
    if a.init_from:
        cfg.train.init_from = a.init_from
    points = [int(p) for p in a.points.split(",")]
    cfg.train.steps = max(points)
    cfg.train.ckpt_every = 10 ** 9
    wd = os.path.join(a.workdir, a.stage)
    devices = jax.devices()[:1]
    done, t0 = 0, time.perf_counter()
    for p in points:
        src = assets_lib.batch_source(cfg, None, text_tok, image_tok)
        out = train(cfg, wd, stop_after=p - done, batch_source=src, devices=devices)
        done = p
        hist = out["history"]
        ev_dir = os.path.join(wd, f"eval_{p}")
        shutil.rmtree(ev_dir, ignore_errors=True)
        res = demo.run_eval(a.stage, cfg, wd, dc.eval, (text_tok, image_tok))
        shutil.move(os.path.join(wd, "eval"), ev_dir)
        row = dict(step=p, seconds=round(time.perf_counter() - t0, 1),
                   loss=hist[-1].get("loss") if hist else None,
                   **{f"{k}.{m}": round(float(v[m]), 4) for k, v in res.items()
                      if isinstance(v, dict) for m in ("accuracy", "format_rate", "overall")
                      if m in v and v.get("n", 1)})
        probes = [(name, n) for name, n in (("t2i_binding_probe", a.probe),
                                             ("mmu_reading_probe", a.mmu_probe)) if n]
        if probes:
            import importlib
            from mmada_jax.evaluate import load_for_eval
            ev = load_for_eval(cfg, wd, devices, text_tok, image_tok)
            for name, n in probes:
                prefix = "probe" if name == "t2i_binding_probe" else "mmu"
                probe = importlib.import_module(name).probe
                for split in ("train", "test"):
                    row.update({f"{prefix}_{split}.{k}": v
                                for k, v in probe(ev, split, n).items()
                                if k not in ("split", "n")})
        print(json.dumps(row), flush=True)
        with open(os.path.join(a.workdir, "curve.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
