"""Two processes x 4 CPU devices train, checkpoint, resume, and match one process x 8 devices.

The two-process run is the real CLI (`python -m mmada_jax.distributed train ...`): each process
draws its own rows (synthetic source with process_index/process_count), the loop assembles the
global batch with jax.make_array_from_process_local_data, both write and restore the checkpoint.
The single-process reference gets the same global batch: the two processes' rows concatenated
in process order.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from mmada_jax import distributed
from mmada_jax.config import apply_overrides, load_config_file
from mmada_jax.data.synthetic import SyntheticSource
from mmada_jax.training.checkpoint import Checkpointer
from mmada_jax.training.loop import build, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "experiments", "pretrain_tiny.py")
STEPS = 4
OVR = {"train.steps": STEPS, "train.log_every": 1, "train.ckpt_every": 2, "train.progress": False,
       "train.tensorboard": False, "mesh.data": 2, "mesh.fsdp": 4,
       "tasks.t2i.batch_size": 8, "tasks.lm.batch_size": 8, "tasks.mmu.batch_size": 8}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_process_run(workdir, *extra):
    port = _free_port()
    flags = [f"--config.{k}={v}" for k, v in OVR.items()]
    procs = []
    for pid in range(2):
        env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                   JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid),
                   XLA_FLAGS="--xla_force_host_platform_device_count=4")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "mmada_jax.distributed", "train", "--config", CFG,
             "--workdir", str(workdir), *flags, *extra],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=480)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append(out)
    for pid, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"process {pid} failed:\n{out[-3000:]}"
    return outs


class _ConcatSource(SyntheticSource):
    """The global batch the two processes draw together (rows of process 0, then process 1)."""

    def __next__(self):
        parts = []
        for p in range(2):
            s = SyntheticSource(self.config, self.layout, p, 2)
            s.step = self.step
            parts.append(next(s))
        self.step += 1
        return {t: {k: np.concatenate([parts[0][t][k], parts[1][t][k]]) for k in parts[0][t]}
                for t in parts[0]}


def _losses(workdir):
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    return {r["step"]: r["loss"] for r in rows}


@pytest.mark.timeout(900)
def test_two_processes_match_one_process(tmp_path):
    cfg = apply_overrides(load_config_file(CFG), OVR)
    single = tmp_path / "single"
    setup = build(cfg, jax.devices())
    src = _ConcatSource(cfg, setup.layout)
    ref = train(cfg, str(single), batch_source=src, devices=jax.devices(),
                log_stream=open(os.devnull, "w"))

    multi = tmp_path / "multi"
    _two_process_run(multi, "--stop_after=2")
    assert Checkpointer(os.path.join(multi, "checkpoints")).latest_step() == 2
    outs = _two_process_run(multi)  # resumes from step 2 on both hosts
    assert any("resumed from" in o for o in outs), outs[0][-2000:]
    la, lb = _losses(single), _losses(multi)
    assert sorted(la) == sorted(lb) == list(range(1, STEPS + 1))
    diff = max(abs(lb[i] - la[i]) / abs(la[i]) for i in la)
    print(f"losses 1 process {[la[i] for i in sorted(la)]}, 2 processes "
          f"{[lb[i] for i in sorted(lb)]}, max relative difference {diff:.2e}")
    np.testing.assert_allclose([lb[i] for i in la], [la[i] for i in la], rtol=2e-5, atol=1e-6)

    ck = Checkpointer(os.path.join(multi, "checkpoints"))
    assert ck.latest_step() == STEPS
    state, data_state = ck.restore(STEPS, setup.abstract_state)
    ck.close()
    assert data_state == {"step": STEPS}
    for (name, a), b in zip(jax.tree_util.tree_leaves_with_path(ref["state"].params),
                            jax.tree_util.tree_leaves(state.params)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6,
                                   err_msg=jax.tree_util.keystr(name))


def test_cluster_args_from_environment():
    assert distributed.cluster_args({}) is None
    assert distributed.cluster_args({"MMADA_DISTRIBUTED": "1"}) == {}
    assert distributed.cluster_args({"TPU_WORKER_HOSTNAMES": "h0,h1,h2,h3"}) == {}
    assert distributed.cluster_args({"TPU_WORKER_HOSTNAMES": "localhost"}) is None
    assert distributed.cluster_args({"SLURM_NTASKS": "8"}) == {}
    env = {"JAX_COORDINATOR_ADDRESS": "h0:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2",
           "JAX_LOCAL_DEVICE_IDS": "0,1"}
    assert distributed.cluster_args(env) == dict(coordinator_address="h0:1234", num_processes=4,
                                                 process_id=2, local_device_ids=[0, 1])
    assert distributed.cluster_args(dict(env, MMADA_DISTRIBUTED="0")) is None
    with pytest.raises(ValueError, match="JAX_PROCESS_ID not set"):
        distributed.cluster_args({"JAX_COORDINATOR_ADDRESS": "h0:1", "JAX_NUM_PROCESSES": "2"})
    with pytest.raises(ValueError, match=r"JAX_PROCESS_ID=2 is outside \[0, JAX_NUM_PROCESSES=2\)"):
        distributed.cluster_args({"JAX_COORDINATOR_ADDRESS": "h0:1", "JAX_NUM_PROCESSES": "2",
                                  "JAX_PROCESS_ID": "2"})
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES='two' is not an integer"):
        distributed.cluster_args({"JAX_COORDINATOR_ADDRESS": "h0:1", "JAX_NUM_PROCESSES": "two",
                                  "JAX_PROCESS_ID": "0"})
    assert distributed.initialize(env={}) is False  # single process: a no-op
