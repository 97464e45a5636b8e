"""Checkpoint conversion between the released (Hugging Face / PyTorch) layout and this project.

    python -m mmada_jax.convert import-hf --hf_dir /ckpt/MMaDA-8B-Base --out runs/mmada8b \
        [--config experiments/stage2_1_8b.py]
    python -m mmada_jax.convert export-hf --workdir runs/s21 --out /out/MMaDA-8B-s21 \
        [--step 1000] [--dtype bfloat16] [--max_shard_size 5GB]
    python -m mmada_jax.convert import-magvit --src /ckpt/magvitv2 --out runs/magvit
    python -m mmada_jax.convert export-magvit --workdir runs/magvit --out /out/magvitv2

import-hf streams every tensor onto the mesh (FSDP over all devices unless --config gives a
mesh) and writes an Orbax train state at step 0 (`--config.train.init_from=<out>` starts a run
from it). export-hf writes model-0000i-of-0000n.safetensors, model.safetensors.index.json and a
LLaDA/MMaDA config.json that the release's PyTorch code loads. Multi-host: run the same command
on every host (after `mmada_jax.distributed.initialize()`, which this CLI calls).
"""

from __future__ import annotations

import argparse
import sys


def _parser():
    p = argparse.ArgumentParser(prog="python -m mmada_jax.convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("import-hf", help="released safetensors -> Orbax train state")
    a.add_argument("--hf_dir", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--config", default=None, help="experiment config (mesh, optimizer)")
    a.add_argument("--no_strict", action="store_true", help="ignore unexpected tensors")
    a.add_argument("--params_only", action="store_true",
                   help="write only the parameters (enough for --config.train.init_from)")
    e = sub.add_parser("export-hf", help="training workdir -> released safetensors layout")
    e.add_argument("--workdir", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--config", default=None, help="default: <workdir>/config.json")
    e.add_argument("--step", type=int, default=None)
    e.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"])
    e.add_argument("--max_shard_size", default="5GB")
    from mmada_jax.training.checkpoint import WEIGHTS
    e.add_argument("--weights", default="auto", choices=WEIGHTS,
                   help="the parameters' moving average (kept when train.ema_decay > 0), the "
                        "last step's, or the average when there is one (auto)")
    mi = sub.add_parser("import-magvit", help="Show-o magvitv2 -> Orbax params")
    mi.add_argument("--src", required=True, help="weights file or directory")
    mi.add_argument("--out", required=True)
    mi.add_argument("--prefix", default="", help="strip this key prefix (e.g. 'vq_model.')")
    me = sub.add_parser("export-magvit", help="Orbax params -> Show-o magvitv2")
    me.add_argument("--workdir", required=True)
    me.add_argument("--out", required=True)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from mmada_jax import distributed
    distributed.initialize()
    cfg = None
    if getattr(args, "config", None):
        from mmada_jax.config import load_config_file
        cfg = load_config_file(args.config)
    try:
        if args.cmd == "import-hf":
            from mmada_jax.hf.api import import_hf
            import_hf(args.hf_dir, args.out, config=cfg, strict=not args.no_strict,
                      params_only=args.params_only)
        elif args.cmd == "export-hf":
            from mmada_jax.hf.api import export_hf
            export_hf(args.workdir, args.out, config=cfg, step=args.step, dtype=args.dtype,
                      max_shard_bytes=args.max_shard_size, weights=args.weights)
        elif args.cmd == "import-magvit":
            from mmada_jax.hf.magvit import import_magvit
            import_magvit(args.src, args.out, prefix=args.prefix)
        elif args.cmd == "export-magvit":
            from mmada_jax.hf.magvit import export_magvit
            export_magvit(args.workdir, args.out)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
