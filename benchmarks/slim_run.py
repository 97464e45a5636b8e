"""A small copy of a finished demo run for a device call: the tokenizers and a stage's checkpoint
with its parameters alone (no optimizer moments: a third of the size). Enough to start a UniGRPO
stage (`rl.init_from`, a partial restore of 'params') or to evaluate the stage; the ShapesWorld
files and the code cache are rebuilt where it lands (deterministic, seconds).

    python benchmarks/slim_run.py --run runs/demo --out runs/gpu_bases/v42 [--stage sft]

The carried tree must stay under the device's 64 MiB: a full demo run is ~60 MB, this ~6 MB.
"""

from __future__ import annotations

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ASSET_FILES = ("text.model", "text.vocab", "image_tokenizer")


def slim_stage(src_stage: str, dst_stage: str) -> int:
    """Copies `src_stage`'s newest checkpoint as a params-only one into `dst_stage`; its step."""
    import orbax.checkpoint as ocp
    from mmada_jax.training.checkpoint import Checkpointer, checkpoint_dir
    src = checkpoint_dir(src_stage)
    if not os.path.isdir(src):  # checked first: the Checkpointer would create it
        raise FileNotFoundError(f"{src_stage}: no checkpoint directory")
    ck = Checkpointer(src, async_save=False)
    step = ck.latest_step()
    ck.close()
    if step is None:
        raise FileNotFoundError(f"{src_stage}: no finished checkpoint")
    tree = ocp.PyTreeCheckpointer().restore(os.path.join(src, str(step), "state"))
    keep = {k: tree[k] for k in ("params", "ema_params") if tree.get(k)}
    if "params" not in keep:
        raise ValueError(f"{src_stage} step {step}: no 'params' in the saved state")
    os.makedirs(dst_stage, exist_ok=True)
    out = Checkpointer(os.path.join(dst_stage, "checkpoints"), async_save=False)
    out.save_final(step, keep)
    out.close()
    for name in ("DONE", "config.json"):
        p = os.path.join(src_stage, name)
        if os.path.exists(p):
            shutil.copy(p, os.path.join(dst_stage, name))
    ev = os.path.join(src_stage, "eval")
    if os.path.isdir(ev):
        shutil.copytree(ev, os.path.join(dst_stage, "eval"), dirs_exist_ok=True)
    return step


def main(argv):
    del argv
    from absl import flags
    f = flags.FLAGS
    if os.path.exists(f.out):
        raise FileExistsError(f"--out {f.out} exists; remove it first")
    for need in ["assets"] + f.stage.split(","):
        if not os.path.isdir(os.path.join(f.run, need)):
            raise FileNotFoundError(f"--run {f.run}: no {need}/ (a finished demo run)")
    tmp = f.out.rstrip("/") + ".partial"  # renamed to --out once complete
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "assets"))
    for name in ASSET_FILES:
        p = os.path.join(f.run, "assets", name)
        if os.path.isdir(p):
            shutil.copytree(p, os.path.join(tmp, "assets", name))
        elif os.path.exists(p):
            shutil.copy(p, os.path.join(tmp, "assets", name))
    fp = os.path.join(f.run, "demo_fingerprint.json")
    if os.path.exists(fp):
        shutil.copy(fp, tmp)
    for stage in f.stage.split(","):
        step = slim_stage(os.path.join(f.run, stage), os.path.join(tmp, stage))
        print(f"{stage}: step {step} -> {os.path.join(f.out, stage)}")
    os.rename(tmp, f.out)


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_string("run", "runs/demo", "A finished demo run.")
    flags.DEFINE_string("out", None, "Where the small copy goes (must not exist).")
    flags.DEFINE_string("stage", "sft", "Comma-separated stages whose checkpoints to copy.")
    flags.mark_flag_as_required("out")
    app.run(main)
