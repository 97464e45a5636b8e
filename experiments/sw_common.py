"""Shared builder of the ShapesWorld stage configs (not an experiment: no get_config).

Stages (one model, three task families: text reasoning, multimodal understanding, t2i):
  pretrain  t2i captions + plain-text corpus (facts, scene descriptions, worked problems) +
            image captioning (mmu without <think>)
  sft       mixed long-CoT in one `<think>` format: arithmetic CoT chats, VQA CoT, t2i captions
            and knowledge-aware reason-then-draw rows (`<|r2i|>`, mmada_jax/data/r2i.py)
  grpo      UniGRPO on reasoning, VQA and t2i prompts (config.rl; mmada_jax/rl/trainer.py)

Variants: 'cpu' (the `make demo` sizes: 2 CPU cores, ~20 minutes for everything), 'gpu' (one
GPU: its step caps take about half an hour on one H100), 'ci' (seconds: the smoke test).
Tokenizer files come from the demo's first phase (`data.tokenizer`: SentencePiece model,
`data.image_tokenizer`: MAGVIT-v2 workdir).
"""

import ml_collections

from mmada_jax.config import base_config, model_config
from mmada_jax.data.pipeline import data_config
from mmada_jax.data.shapesworld.scenes import ATTRIBUTE_WORDS, CELL_WORDS

ASSETS = "runs/demo/assets"
VARIANTS = ("cpu", "gpu", "ci")

MODEL = {
    "cpu": dict(d_model=128, n_layers=4, n_heads=4, n_kv_heads=4, mlp_dim=512, max_seq_len=256,
                abs_pos_embed=True),
    "gpu": dict(d_model=512, n_layers=8, n_heads=8, n_kv_heads=8, mlp_dim=1536, max_seq_len=256),
    "ci": dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, mlp_dim=64, max_seq_len=256),
}
# global rows per step: t2i, r2i, lm, mmu
# cpu: small batches, many steps (2.6 steps/s at 14 rows vs 1.0 at 28 rows on 2 cores)
BATCH = {"cpu": (8, 2, 4, 4), "gpu": (64, 16, 48, 64), "ci": (2, 2, 2, 2)}
# cpu fine-tuning: most rows for what it targets (reasoning chats, VQA); t2i and r2i keep a row
# each. Reasoning accuracy follows the number of worked problems seen (H100 learning curves at the
# cpu sizes, BENCHMARKS.md: ~0.2 at 10k, ~0.5-0.7 at 16-28k), VQA the number of VQA rows
SFT_BATCH = {"cpu": (1, 1, 7, 6)}
# cpu fine-tuning: the reasoning chats' loss weighted 2 (2026-12-06). At weight 1 fresh clones
# of one config ended SFT with their addition / subtraction facts right 49-79% of the time
# (equations true 0.71-0.87 on 384 problems), and UniGRPO only helped from the stronger ones. From
# the same pre-training checkpoints and step counts, weight 2: v33's 0.818 -> 0.911 (+44 / -8),
# v32's 0.758 -> 0.932 (+75 / -8), equations true 0.86 -> 0.90 and 0.71 -> 0.95; VQA 0.477 ->
# 0.443 and 0.500 -> 0.513 (BENCHMARKS.md, "The demo")
SFT_LM_COEFF = {"cpu": 2.0}
# the cpu variant's 'read' task: salient rows (every color, shape and size word of a caption or
# worked VQA answer masked, the rest shown; `text_answer_full`), 4 per step in pre-training and
# SFT. Together with learning rates of 5e-4 (below) it is what makes the 2-core model read
# colors off the image at all: at 2e-3 the skill never forms (`benchmarks/read_learnability.py
# --lr`), and the demo's model answered VQA from text priors (BENCHMARKS.md, "The demo").
# `experiments/sw_cpu_read.py:0` is the previous setting (no read rows, lr 2e-3 / 1e-3)
CPU_READ_ROWS = 4
# a read lead-in (`train.lead_in`, off): 400 steps of 16 read rows and nothing else at a
# constant 5e-4 before the task mix. It teaches reading fastest (train-split colors 0.85 after
# it) but costs t2i: object F1 0.30 -> 0.02 at the demo's step counts (GPU sweep, BENCHMARKS.md)
# the read rows' masked words: the look words and, since 2026-12-05 (sixteenth session), the cell
# words ("top", "left", "center", ...). With the look words alone the worked VQA answers named a
# cell holding an object in 33% of their claims and position answers were right 0.09; with the
# cell words too, 77% and 0.72, VQA 0.33 -> 0.59, reasoning 0.64 -> 0.83, GenEval-style 0.27 ->
# 0.33 after SFT (one run each on this box, BENCHMARKS.md, "The demo";
# `benchmarks/listing_precision.py`)
READ_WORDS = tuple(ATTRIBUTE_WORDS) + CELL_WORDS
# gpu fine-tuning: read rows off by default (the GPU model reads colors 0.97 without them);
# `experiments/sw_gpu_read.py:N` turns N on, aimed at position answers that do not follow the
# model's own listing (GPU run 15). Run 16 with 32: SFT VQA 0.924, position 0.94 (BENCHMARKS.md)
GPU_READ_ROWS = 0
# read rows per step by variant and stage (a stage listed here has the 'read' task)
READ_ROWS = {"cpu": dict(pretrain=CPU_READ_ROWS, sft=CPU_READ_ROWS), "gpu": dict(sft=GPU_READ_ROWS)}
READ_LEAD_IN = ("tasks.t2i.batch_size=0;tasks.lm.batch_size=0;tasks.mmu.batch_size=0;"
                "tasks.read.batch_size=16;optim.lr=5e-4;optim.schedule=constant")
STEPS = {"cpu": dict(pretrain=3000, sft=3000, grpo=60), "gpu": dict(pretrain=20000, sft=12000, grpo=300),
         "ci": dict(pretrain=3, sft=2, grpo=1)}
# cpu grpo: a cap the 180 s budget ends first: ~47 steps at ~3.8 s on 2 cores with stop_at_eos
# rollouts and the update on the kept groups' rows (`rl.update_quantum`, since the
# twenty-seventh session; 35-37 steps in v40-v42 without it). On one GPU from v42's SFT
# checkpoint (`benchmarks/grpo_gpu_sweep.sh`, BENCHMARKS.md) the stage at 45 steps raised its
# reward on 192 held-out reasoning prompts in 4 of 4 seeds (p 0.0001-0.09), greedy accuracy
# by +0.006 on average. From v28's SFT checkpoint 66 steps raised held-out reasoning 0.805 ->
# 0.878 / 0.857 (two seeds, 384 problems; 0.826 / 0.862 after 22), where the ~22 steps of a
# 120 s stage stayed within the spread of 96 problems. The demo's own stage: v40 0.896 -> 0.953
# on 192 (p 0.007), v41 0.932 -> 0.958; v31 0.820 -> 0.901 on 384 (p 8e-9), v32 0.758 -> 0.763,
# v30 0.714 -> 0.721: it ties answers to their worked
# equations, which raises accuracy only where the SFT model's equations are mostly right
# (BENCHMARKS.md, "The demo"; benchmarks/results/cpu_grpo_v32/). Older: with weak SFT models
# (v13-v20) every setting tried at ~16 steps lowered or kept held-out reasoning.
# gpu fine-tuning: which VQA training questions are drawn how often (the UniGRPO stage's config
# carries them too; its VQA prompts come from the eval's generator, uniform) (uniform is 0.2
# per kind and 1/3 per count target): shape counts 18% of the VQA rows instead of 6.7%
GPU_VQA_KIND_WEIGHTS = dict(count=0.4, color=0.15, position=0.15, exists=0.15, caption=0.15)
GPU_VQA_COUNT_WEIGHTS = dict(all=0.2, color=0.35, shape=0.45)
# cpu: 5e-4 (GPU sweep of the cpu demo at its step counts, 2026-12-05, BENCHMARKS.md: against
# 2e-3 / 1e-3 with no read rows, SFT VQA 0.28 -> 0.48, reasoning 0.59 -> 0.67, GenEval-style
# 0.18 -> 0.34)
# cpu grpo 1e-5 until the thirtieth session (with the equations and listing rewards): from the fresh v27
# SFT checkpoint, over 4 rollout seeds each, held-out reasoning / VQA 0.797 / 0.513 at 2e-5
# with correctness and format alone, 0.826 / 0.523 at 2e-5 with both rewards, 0.839 / 0.547
# at 1e-5 and 0.841 / 0.547 at 5e-6 (SFT 0.854 / 0.542; BENCHMARKS.md, "The demo")
# cpu grpo 3e-5 with the fine-tuning anchor (`rl_section`, since the thirtieth session): from
# v49's and v50's SFT checkpoints on one GPU, four rollout seeds each (BENCHMARKS.md, "UniGRPO's
# fine-tuning anchor"), the sampled pass rate on the 192 held-out prompts rose in 8 of 8 seeds
# (+0.024 / +0.014 on average; 1e-5 without the anchor +0.015 / +0.007), the held-out reward
# beyond chance in 5 of 8 (3 of 8), greedy accuracy 0.787 / 0.725 against 0.796 / 0.719
LR = {"cpu": dict(pretrain=5e-4, sft=5e-4, grpo=3e-5), "gpu": dict(pretrain=6e-4, sft=3e-4, grpo=5e-6),
      "ci": dict(pretrain=1e-3, sft=1e-3, grpo=1e-5)}


def parse_arg(arg):
    variant = arg or "cpu"
    if variant not in VARIANTS:
        raise ValueError(f"ShapesWorld configs: unknown variant {variant!r}; known {VARIANTS}")
    return variant


GPU_EMA_DECAY = 0.999


def sw_config(stage: str, variant: str = "cpu"):
    c = base_config()
    c.name = f"sw_{stage}_{variant}"
    c.model = model_config("small", **MODEL[variant])
    c.model.dtype = "bfloat16" if variant == "gpu" else "float32"
    # unrolled layers train and sample faster: on GPU (BENCHMARKS.md) and for the small cpu model
    # (2 cores: 345 vs 414 ms per fine-tuning step)
    c.model.scan_layers = variant == "ci"
    if variant == "gpu":
        c.model.attention_impl = "auto"
    c.tokens = ml_collections.ConfigDict(dict(preset="custom", base_vocab_size=1024,
                                              codebook_size=1024, model_vocab_size=0))
    # cpu / ci: 24 px scenes of 1-2 objects (6x6 image codes, short captions and CoT): rows fit
    # 112 tokens
    c.seq_len = 160 if variant == "gpu" else 112
    c.mesh.data = -1
    b_t2i, b_r2i, b_lm, b_mmu = (SFT_BATCH.get(variant, BATCH[variant]) if stage != "pretrain"
                                 else BATCH[variant])
    c.tasks.t2i.batch_size, c.tasks.t2i.coeff = b_t2i, 1.0
    if variant == "cpu":  # (BENCHMARKS.md, "The demo"): half the image rows fully masked;
        # in pre-training the t2i loss weighs 3x: at weight 1 the text corpus and captioning
        # rows crowd it out (800 steps: one-step samples' colors right 0.05 vs 0.20 at 3x)
        c.tasks.t2i.schedule = "half_full"
        if stage == "pretrain":
            c.tasks.t2i.coeff = 3.0
    c.tasks.lm.batch_size = b_lm
    c.tasks.mmu.batch_size, c.tasks.mmu.coeff = b_mmu, 1.0
    if stage == "pretrain":
        c.tasks.lm.objective, c.tasks.lm.coeff = "text_lm", 0.5
    else:  # mixed CoT: chat answers, plus knowledge-aware reason-then-draw rows
        c.tasks.lm.objective, c.tasks.lm.coeff = "text_answer", SFT_LM_COEFF.get(variant, 1.0)
        c.tasks.r2i = ml_collections.ConfigDict(dict(objective="image_mask",
                                                     schedule=c.tasks.t2i.schedule,
                                                     coeff=1.0, batch_size=b_r2i))
    c.optim.lr = LR[variant][stage]
    c.optim.warmup_steps = {"pretrain": 50, "sft": 20, "grpo": 0}[stage] if variant != "gpu" \
        else {"pretrain": 1000, "sft": 200, "grpo": 10}[stage]
    c.optim.min_lr_scale = 0.1
    c.train.steps = STEPS[variant][stage]
    c.train.log_every = {"cpu": 10, "gpu": 50, "ci": 1}[variant]
    c.train.ckpt_every = {"cpu": 100000, "gpu": 1000, "ci": 100000}[variant]
    c.train.keep_ckpts = 1
    c.train.seed = {"pretrain": 0, "sft": 1, "grpo": 2}[stage]
    # gpu: a moving average of the parameters (training/ema.py, ~1000-step window) is what the
    # stage hands on and is evaluated. GPU run 19, the same SFT run's two weights item by item:
    # POPE F1 0.658 -> 0.834 (47 fixed / 15 broken, p 6e-5), reasoning 0.961 -> 0.973 (+4 / -1),
    # VQA 0.773 both. cpu: off; a 0.995 average of the demo's 2079-step fine-tuning stage lowered
    # reasoning 0.922 -> 0.880 (p 0.002): the short stage still improves faster than the
    # average follows (BENCHMARKS.md)
    c.train.ema_decay = GPU_EMA_DECAY if variant == "gpu" and stage != "grpo" else 0.0

    d = data_config()
    d.tokenizer = f"{ASSETS}/text.model"
    d.image_tokenizer = f"{ASSETS}/image_tokenizer"
    d.data_dir = f"{ASSETS}/data"
    # gpu: 192 rows per step need parallel workers to keep up (6 steps/s with the loader in the
    # training process vs 43.6 with 8 workers on the H100)
    d.num_workers = 8 if variant == "gpu" else 0
    # CPU: 24x24 scenes through a two-level MAGVIT (24 -> 6x6 codes): each grid cell is exactly
    # 2x2 codes (an object's codes still vary a little with its row and column: zero padding at
    # the border; about 110 distinct codes in all); the tokenizer trains ~20-50
    # steps/s on 2 cores (37.9 dB, 97% parser agreement in the demo's budget; 32 px -> 8x8:
    # 33.1 dB / 95%) and rows are short. The scene parser reads 24 px scenes as reliably.
    # GPU: 64 px -> 8x8 codes (three levels).
    d.image_size = 64 if variant == "gpu" else 24
    d.num_image_tokens = 64 if variant == "gpu" else 36
    d.max_text_len = 32 if variant == "cpu" else 44
    d.caption_dropout = 0.1
    d.seed = c.train.seed
    d.shapesworld.num_train = {"cpu": 4000, "gpu": 20000, "ci": 64}[variant]
    d.shapesworld.num_test = {"cpu": 200, "gpu": 1000, "ci": 16}[variant]
    d.r2i_max_prompt_len = 24
    # the worked steps alone ("4 + 3 = 7."), without restating the question's nouns: fewer
    # answer tokens that carry nothing for the final number
    d.shapesworld.arith_cot = "equations"
    # counting and color worked answers name only the attribute asked about ("The colors: blue
    # in the center.") instead of first naming every object's size, color and shape: a test
    # scene's held-out color/shape pair (never written in training) is then not one the model
    # has to write (position and existence questions name the pair and keep the inventory).
    # 'counted' (a running count in counting listings) measured worse on the GPU: counting
    # 0.87 -> 0.77, the model leaving out the marks (BENCHMARKS.md).
    # gpu: 'color_first', whose position and existence answers write no pair either ("The white
    # shapes: a large square in the top right. The large square is in the top right."). With
    # the inventory, position collapsed in 7 of 11 GPU runs (0.52-0.82: the asked object's name
    # written in the held-out object's cell); GPU run 21 with it: position 0.91, VQA 0.909, the
    # asked object answered with the held-out object's cell 5% of the time (collapsed runs
    # 11-35%). cpu: 'factored'; there 'color_first' measured 0.456 against 0.487 (p 0.24)
    d.shapesworld.vqa_cot = "color_first" if variant == "gpu" else "factored"
    # plain-text documents (the pre-training corpus) share rows; a chat never ends at a segment
    # boundary (mmada_jax/data/batching.py): it keeps its own eos-padded row, or on cpu, where a
    # reasoning chat (prompt + CoT + answer) is 48-55 tokens, it is eos-padded to 56 and two share
    # a 112-token row: twice the worked problems per step at the same cost
    d.pack = "lm"
    d.chat_pack_len = 56 if variant == "cpu" else 0
    if variant == "cpu":  # learnable in the demo's minutes: 1-step word problems with small
        # numbers, scenes of 1-2 objects (short captions and CoT, fewer distractors), captions
        # in one template with the objects in reading order (data/shapesworld/captions.py)
        d.shapesworld.update(dict(arith_max_steps=1, arith_max_start=10, arith_max_add=10,
                                  max_objects=2, caption_style="plain"))
    elif variant == "ci":  # the smoke test walks the same 1-2 object path
        d.shapesworld.max_objects = 2
    if variant == "gpu" and stage in ("sft", "grpo"):
        # a quarter of the VQA/caption image rows are 'readback' rows: no image, the first part
        # of the worked answer shown, so a count or position can only be read from the listing
        # before it. GPU runs 6-7 with it: final VQA 0.914 / 0.919 against 0.857-0.906 in runs
        # 1-5 without, counts following the model's own listing 85-86% against 76-79%
        # (BENCHMARKS.md). UniGRPO trains on rollouts, not on these rows: in its config the
        # value records that its starting policy learned them (the evaluator reads it to judge
        # config.eval.readback)
        d.readback_prob = 0.25
        # more counting practice: GPU runs 12, 14 and 18 (count-heavy questions) reached final
        # VQA 0.917 / 0.948 / 0.893 against 0.883-0.914 for uniform questions (runs 6, 9, 10),
        # test-split counting 0.86 / 0.90 / 0.88 at SFT against 0.78-0.86 (BENCHMARKS.md). The eval's questions
        # are unchanged; `experiments/sw_gpu_counts.py:uniform` restores uniform draws
        d.shapesworld.vqa_kind_weights = dict(GPU_VQA_KIND_WEIGHTS)
        d.shapesworld.vqa_count_weights = dict(GPU_VQA_COUNT_WEIGHTS)
    if stage == "pretrain":
        d.mixture = {"t2i": {"sw_t2i": 1.0}, "lm": {"sw_corpus": 1.0}, "mmu": {"sw_caption": 1.0}}
    else:
        d.mixture = {"t2i": {"sw_t2i": 1.0}, "lm": {"sw_arith": 1.0},
                     "mmu": {"sw_vqa": 0.85, "sw_caption": 0.15}}
    if stage in READ_ROWS.get(variant, {}):
        # readback_prob 0: the gpu fine-tuning rows' readback share (above) is not taken from
        # the read rows, which stay salient rows with their image
        c.tasks.read = ml_collections.ConfigDict(dict(
            objective="text_answer_full", coeff=1.0, salient_prob=1.0, readback_prob=0.0,
            batch_size=READ_ROWS[variant][stage]))
        d.salient_words = list(READ_WORDS)
        d.mixture["read"] = ({"sw_caption": 1.0} if stage == "pretrain" else
                             {"sw_vqa": 0.5, "sw_caption": 0.5})
    if variant == "cpu" and stage == "pretrain":
        # the lead-in phase that teaches reading before the task mix (training/lead_in.py):
        # read rows alone at a learning rate the skill forms at (BENCHMARKS.md, "The demo");
        # off here (0 steps), on with 'train.lead_in.steps=N'
        c.train.lead_in.overrides = READ_LEAD_IN
    c.data = d
    return c


def eval_section(variant: str):
    from mmada_jax.evaluate import eval_config
    e = eval_config()
    if variant == "ci":
        e.update(dict(batch_size=2, n_reasoning=2, n_vqa=2, n_pope=2, n_t2i_per_tag=1, n_wise=2,
                      r2i_reasoning_steps=2, num_shown=1, prompt_len=128))
        e.text_sampler.update(dict(gen_length=8, steps=2, block_length=8))
        e.image_sampler.update(dict(steps=2))
    elif variant == "gpu":
        e.update(dict(batch_size=64, n_reasoning=200, n_vqa=300, n_pope=200, n_t2i_per_tag=32,
                      n_wise=64))
    return e


def rl_section(variant: str):
    from mmada_jax.rl.trainer import rl_config
    r = rl_config()
    r.steps = STEPS[variant]["grpo"]
    r.init_from = "runs/demo/sft"
    # the stage's own objective on held-out prompts, for the SFT and the trained policy
    # (`rl/heldout.py`; the demo writes grpo/heldout_rewards.json and a table in the report):
    # chunks of one step's prompts per task
    r.heldout_chunks = {"ci": 1, "cpu": 32, "gpu": 4}[variant]
    if variant == "cpu":  # 192 reasoning prompts (32 chunks of 6) x 6 samples. From v38's SFT model the stage
        # moves most of them not at all (right 6 of 6 times before and after), so 64 prompts
        # could not resolve its gain (6 up / 3 down, p 0.5) where 256 do (27 / 10, p 0.008;
        # v39's own 58 / 29, p 0.0025); 192 (since v40, 26 s less) keep most of that power.
        # BENCHMARKS.md, "The demo". The VQA and t2i rewards stayed flat on held-out prompts
        # in every cpu run (v31-v38), so the time goes to reasoning
        r.heldout_tasks = "reasoning"
    if variant == "ci":
        r.update(dict(group_size=2, num_iterations=2, prompt_len=128))
        for t in r.tasks.values():
            t.prompts = 1
        r.text_sampler.update(dict(gen_length=8, steps=2, block_length=8))
        r.image_sampler.update(dict(steps=2))
    elif variant == "cpu":  # answers of 1-2 object scenes and 1-step problems fit 48 tokens
        # stop_at_eos: answers end after 17-26 of the 48 tokens; the same rollouts, 2.5 -> 1.7 s
        # a step (the dual K/V cache, 0.8 s, was tried: 66 steps then gained less, 0.859 / 0.500
        # reasoning / VQA against 0.891 / 0.542 over two seeds)
        r.text_sampler.update(dict(gen_length=48, steps=24, block_length=8, temperature=0.7,
                                   stop_at_eos=True))
        # the update's passes on the kept groups' rows in batches of 12, 24, 36 or 48 (half
        # of the 48 rollouts are kept on average): 3.8 s a step instead of 5 (STEPS above)
        r.update_quantum = 12
        # t2i prompts too since the cpu model binds captions to cells (abs_pos_embed, plain
        # captions, half_full masking): from v20's SFT checkpoint the scene-judge reward (object
        # F1) is non-zero in about half the groups; its rollouts cost ~1/4 of each step
        r.group_size = 6
        # 6 reasoning prompts a step, 1 VQA, 1 t2i (4 / 2 / 2 until the twenty-eighth session):
        # the same 48 rollouts and step time (44 steps in v47's 180 s), half again the reasoning
        # groups. From v47's SFT checkpoint on one GPU (BENCHMARKS.md, "UniGRPO from v47's SFT"):
        # greedy reasoning 0.930 -> 0.938 on average over 4 seeds (+42 / -29 items) and the
        # held-out pass rate up in 3 of 4, against 0.928 (+52 / -55) and 2 of 6 with 4 / 2 / 2;
        # the reasoning prompts alone at 4 a step (no VQA or t2i) did no better than 4 / 2 / 2
        r.tasks.reasoning.prompts, r.tasks.vqa.prompts, r.tasks.t2i.prompts = 6, 1, 1
        # sound worked steps and true cell claims rewarded besides right answers: a stronger
        # SFT model (v27) lost held-out reasoning to rollouts whose right answers came from
        # unsound equations (BENCHMARKS.md, "The demo": UniGRPO seeds on v27)
        r.tasks.reasoning.rewards.equations = 1.0
        r.tasks.vqa.rewards.listing = 1.0
        # the fine-tuning anchor (`rl/anchor.py`): each update adds the SFT loss on a batch of the
        # reasoning chats and the VQA rows, which holds the policy near the SFT model at the 3x
        # learning rate (LR above; at 1e-4 with the anchor the stage broke facts and VQA). The
        # VQA rows since v54 (BENCHMARKS.md, "Runs v52-v55"): from its SFT checkpoint, with the
        # reasoning chats alone VQA fell 0.427 -> 0.312 (+5 / -16), with both 0.396 (+4 / -7)
        r.anchor_coeff = 1.0
        r.anchor_tasks = "lm,mmu"
    elif variant == "gpu":
        r.update(dict(group_size=8, num_iterations=4, mask_samples=2, ckpt_every=50))
        for t in r.tasks.values():
            t.prompts = 8
    return r
