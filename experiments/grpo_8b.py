"""UniGRPO at official scale (spec section 5): MMaDA-8B from the stage 2.2 (MixCoT) checkpoint.

    python -m mmada_jax.grpo --config experiments/grpo_8b.py --workdir gs://.../grpo_8b \
        --config.rl.init_from=gs://.../stage2_2

Recipe: the authors' later RL code (spec section 5): 16 samples per prompt, 2 masked copies per
update with t ~ U(0.1, 0.9), clip 0.2, k3 KL with beta 0.01, lr 1e-6, groups with a pass rate
above 0.95 or below 0.05 dropped; text rewards correctness (2.0) + format (0.5), t2i rewards from
a judge (`rl.tasks.t2i.rewards`: swap 'scene_judge' for a registered learned reward, e.g. CLIP /
ImageReward via `rl.rewards.LearnedReward`, scaled 0.1 as the paper does). RL prompts here are the
ShapesWorld generators (the trainer's `prompts_for`); GSM8K / GeoQA / CLEVR prompt readers plug in
the same way. Rollouts: LLaDA text sampler (gen 256, 128 steps, block 32, temperature 1) and
MaskGIT (15 steps, CFG 3.5) through mmada_jax.sampling.
`diffu` variant: diffu-GRPO's recipe (mu 12, group 6, beta 0.04, clip 0.5, lr 3e-6).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage_common_8b import stage_config  # noqa: E402


def get_config(arg=None):
    from mmada_jax.evaluate import eval_config
    from mmada_jax.rl.trainer import rl_config
    c = stage_config("2.2")
    c.name = "mmada_8b_unigrpo"
    c.optim.lr = 1e-6
    c.optim.warmup_steps = 10
    c.optim.weight_decay = 0.0
    c.train.grad_accum = 1
    for t in c.tasks.values():  # the UniGRPO batch is built from rollouts, not from these
        t.batch_size = 64
    r = rl_config()
    r.update(dict(steps=2000, group_size=16, num_iterations=1, mask_samples=2, t_min=0.1,
                  t_max=0.9, clip_eps=0.2, beta=0.01, filter_low=0.05, filter_high=0.95,
                  prompt_len=1280, ckpt_every=50, log_every=1, init_from=""))
    r.tasks.reasoning.prompts = 16
    r.tasks.vqa.prompts = 16
    r.tasks.t2i.prompts = 8
    r.tasks.t2i.rewards = {"scene_judge": 0.1}
    r.tasks.t2i.pass_threshold = 0.1
    r.text_sampler.update(dict(gen_length=256, steps=128, block_length=32, temperature=1.0))
    r.image_sampler.update(dict(steps=15, guidance_scale=3.5))
    if arg == "diffu":
        r.update(dict(group_size=6, num_iterations=12, mask_samples=1, beta=0.04, clip_eps=0.5,
                      filter_low=0.0, filter_high=1.0))
        c.optim.lr = 3e-6
    elif arg not in (None, ""):
        raise ValueError(f"grpo_8b: unknown variant {arg!r} (diffu)")
    c.rl = r
    e = eval_config()
    e.update(dict(batch_size=64, prompt_len=1280, n_reasoning=500, n_vqa=500, n_pope=500,
                  n_t2i_per_tag=64, n_wise=200))
    e.text_sampler.update(dict(gen_length=256, steps=256, block_length=32))
    e.image_sampler.update(dict(steps=15, guidance_scale=3.5))
    c.eval = e
    return c
