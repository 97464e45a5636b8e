"""SIGTERM during training saves a checkpoint before the process exits; a rerun resumes."""

import os
import signal
import subprocess
import sys
import time

from mmada_jax.training.checkpoint import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sigterm_saves_and_resumes(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "mmada_jax.train", "--config",
           os.path.join(ROOT, "experiments", "pretrain_tiny.py"), "--workdir", str(tmp_path),
           "--config.train.steps=100000", "--config.train.ckpt_every=100000",
           "--config.train.log_every=1"]
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    for line in p.stdout:  # wait until training steps are running
        if "[train] step 3/" in line or time.time() > deadline:
            break
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0, out[-2000:]
    assert "stopped at step" in out and "signal" in out, out[-2000:]
    step = Checkpointer(os.path.join(tmp_path, "checkpoints")).latest_step()
    assert step is not None and step >= 3
