"""UniGRPO sanity probe: does the rollout pass rate rise on a FIXED prompt set it trains on?

Every outer step takes the same 16 reasoning prompts (8 on-policy samples each) from a demo run's
SFT checkpoint and prints one JSON line (pass rate, kept fraction, KL, loss, grad norm). With
learning working, the pass rate on prompts the policy is trained on should climb.

    python benchmarks/grpo_fixed_prompts.py runs/demo /tmp/fixed_a 2e-4 'rl.num_iterations=1'

BASE is a finished demo workdir (cpu variant: assets/, sft/); LR the UniGRPO learning rate; the
optional fourth argument is demo-style stage overrides for the grpo stage ('key=value;...').
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "experiments"))
from mmada_jax import demo  # noqa: E402
from mmada_jax.rl.trainer import UniGRPO  # noqa: E402

base, wd, lr = sys.argv[1], sys.argv[2], float(sys.argv[3])
extra = sys.argv[4] if len(sys.argv) > 4 else ""
dc = demo.demo_config("cpu")
dc.stage_overrides.grpo = extra
cfg = demo._stage_config("grpo", "cpu", base, dc)
cfg.rl.init_from = f"{base}/sft"
cfg.rl.tasks.vqa.prompts = 0
cfg.rl.tasks.reasoning.prompts = 16
cfg.rl.group_size = 8
cfg.rl.steps = 40
cfg.optim.lr = lr
tr = UniGRPO(cfg, wd)
for k in range(int(cfg.rl.steps)):
    out = tr.train_step(0)  # same 16 prompts every step, fresh on-policy samples
    print(json.dumps(dict(k=k, pass_rate=round(out["reasoning/pass_rate"], 3),
                          kept=out["kept_fraction"], kl=round(out["kl"], 4),
                          loss=round(out["loss"], 4), grad_norm=round(out["grad_norm"], 3))),
          flush=True)
