"""Checkpoints: Orbax CheckpointManager with the train state and the data iterator's state.

- async save every `train.ckpt_every` steps, keep the last `train.keep_ckpts`;
- `restore_latest` resumes from the newest *finished* checkpoint (Orbax writes into a temporary
  directory and renames it on commit, so a half-written step is never listed);
- before restoring, the saved tree is checked against the expected one and a mismatch (missing or
  unexpected keys, shapes, dtypes) raises `CheckpointMismatchError` naming every difference.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _short(e: Exception, n: int = 300) -> str:
    msg = str(e).split(" [tensorstore_spec")[0]
    return msg if len(msg) <= n else msg[:n] + "..."


class CheckpointMismatchError(ValueError):
    """The checkpoint on disk does not fit the state this config builds."""


def _path_str(path) -> str:
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def flatten_with_names(tree) -> dict[str, Any]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_path_str(p): v for p, v in leaves}


def compare_trees(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences between {name: metadata-with-shape/dtype} maps, as readable lines."""
    problems = []
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing:
        problems.append(f"missing in checkpoint: {missing}")
    if unexpected:
        problems.append(f"unexpected in checkpoint: {unexpected}")
    for k in sorted(set(saved) & set(expected)):
        s, e = saved[k], expected[k]
        s_shape, e_shape = tuple(getattr(s, "shape", ())), tuple(getattr(e, "shape", ()))
        if s_shape != e_shape:
            problems.append(f"{k}: shape {s_shape} in checkpoint, expected {e_shape}")
        s_dt, e_dt = getattr(s, "dtype", None), getattr(e, "dtype", None)
        if s_dt is not None and e_dt is not None and str(s_dt) != str(e_dt):
            problems.append(f"{k}: dtype {s_dt} in checkpoint, expected {e_dt}")
    return problems


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` for {state, data} checkpoints in `directory`."""

    def __init__(self, directory: str, keep: int = 3, save_every: int = 1,
                 async_save: bool = True):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "data": ocp.JsonCheckpointHandler()},
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, save_interval_steps=max(int(save_every), 1),
                enable_async_checkpointing=async_save, create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self):
        return self.manager.all_steps()

    def save(self, step: int, state, data_state=None, force: bool = False) -> bool:
        args = {"state": ocp.args.StandardSave(state)}
        if data_state is not None:
            args["data"] = ocp.args.JsonSave(data_state)
        return self.manager.save(int(step), args=ocp.args.Composite(**args), force=force)

    def save_final(self, step: int, state, data_state=None) -> None:
        """Save `step` unless it is already saved, then wait for the write to finish."""
        if int(step) not in self.manager.all_steps():
            self.save(step, state, data_state, force=True)
        self.wait()

    def wait(self):
        self.manager.wait_until_finished()

    def check_compatible(self, step: int, abstract_state) -> None:
        try:
            meta = self.manager.item_metadata(step)
        except Exception as e:  # unreadable metadata: corrupt directory
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} is unreadable (corrupt or "
                f"incomplete): {_short(e)}") from e
        state_meta = meta["state"] if meta is not None and "state" in meta else None
        if state_meta is None:
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} has no 'state' item")
        tree = getattr(state_meta, "tree", state_meta)
        problems = compare_trees(flatten_with_names(tree), flatten_with_names(abstract_state))
        if problems:
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} does not match this config:\n  "
                + "\n  ".join(problems))

    def restore(self, step: int, abstract_state, with_data: bool = True):
        """Returns (state, data_state or None); `abstract_state` carries target shardings."""
        self.check_compatible(step, abstract_state)
        items = os.listdir(os.path.join(self.directory, str(step)))
        args = {"state": ocp.args.StandardRestore(abstract_state)}
        if with_data and "data" in items:
            args["data"] = ocp.args.JsonRestore()
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(**args))
        except Exception as e:
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} could not be restored (corrupt or "
                f"incomplete): {_short(e)}") from e
        return out["state"], (out["data"] if "data" in args else None)

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()


def checkpoint_dir(path: str) -> str:
    """Accept a workdir (with checkpoints/ inside) or a checkpoints directory."""
    sub = os.path.join(path, "checkpoints")
    return sub if os.path.isdir(sub) else path


WEIGHTS = ("auto", "params", "ema")


def restore_params(path: str, abstract_state, step: int | None = None, weights: str = "auto"):
    """`restore_weights` without saying which weights it read: (params, step)."""
    params, step, _ = restore_weights(path, abstract_state, step, weights)
    return params, step


def restore_weights(path: str, abstract_state, step: int | None = None, weights: str = "auto"):
    """Parameters of a checkpoint under `path` (a workdir or checkpoints dir), newest by default.

    Only the parameter arrays are read (an Orbax partial restore): the optimizer moments, twice
    the parameters' size, are never loaded. `abstract_state` (or just its `.params`) gives the
    expected names, shapes, dtypes and target shardings; a mismatch raises
    CheckpointMismatchError naming it. `weights`: 'params' (the last step's), 'ema' (the
    moving average, `training/ema.py`; an error if the run kept none) or 'auto' (the average
    when the checkpoint has one, else the last step's). Returns (params, step, 'ema' or
    'params': the weights read)."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r}: one of {WEIGHTS}")
    d = os.path.abspath(checkpoint_dir(path))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"init_from: no checkpoint directory at {path}")
    ck = Checkpointer(d, async_save=False)
    step = ck.latest_step() if step is None else step
    if step is None:
        ck.close()
        raise FileNotFoundError(f"init_from: no finished checkpoint in {d}")
    abstract_params = getattr(abstract_state, "params", abstract_state)
    meta = ck.manager.item_metadata(step)
    ck.close()
    tree = getattr(meta["state"], "tree", meta["state"])
    tree = tree if isinstance(tree, dict) else {}
    has_ema = bool(tree.get("ema_params"))
    if weights == "ema" and not has_ema:
        raise CheckpointMismatchError(
            f"checkpoint step {step} in {d} has no moving average of the parameters "
            "(the run had train.ema_decay = 0); use weights='params'")
    key = "ema_params" if weights == "ema" or (weights == "auto" and has_ema) else "params"
    saved = flatten_with_names(tree.get(key, {}))
    problems = compare_trees(saved, flatten_with_names(abstract_params))
    if problems:
        raise CheckpointMismatchError(
            f"{key} of checkpoint step {step} in {d} do not match this config:\n  "
            + "\n  ".join(problems))
    item = {key: abstract_params}
    try:
        out = ocp.PyTreeCheckpointer().restore(
            os.path.join(d, str(step), "state"),
            args=ocp.args.PyTreeRestore(
                item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
                partial_restore=True))
    except Exception as e:
        raise CheckpointMismatchError(
            f"{key} of checkpoint step {step} in {d} could not be restored (corrupt or "
            f"incomplete): {_short(e)}") from e
    return out[key], step, "ema" if key == "ema_params" else "params"
