"""Shared builder of the official-scale (MMaDA-8B) stage configs, spec section 3.

Not an experiment itself (no get_config): `experiments/stage{1_1,1_2,1_3,2_1,2_2}_8b.py` call
`stage_config(name)`. Global batches are the spec's (1920 / 1536 / 1536 / 1024 / 1024); the split
over t2i / lm / mmu rows is this project's choice (the spec fixes only the totals) and keeps every
task divisible by 64 data-parallel chips (v5p-128). Data mixtures are the data pipeline's
(`config.data`); these configs default to the synthetic source so they compile and smoke-test
anywhere.
"""

from mmada_jax.config import base_config, model_config

# stage -> (text len, image tokens, lr, (c_t2i, c_lm, c_mmu), (b_t2i, b_lm, b_mmu), lm objective,
#           grad_accum). grad_accum keeps 9-12k tokens per chip per micro-step on v5p-128; compiled
#           there at 17.6-21.4 GiB of 95 per chip (benchmarks/results/scale.md), so fewer
#           accumulation steps (faster) probably fit too: check with mmada_jax.compile.
STAGES = {
    "1.1": (128, 256, 1e-4, (1.0, 0.1, 1.0), (896, 256, 768), "text_lm", 1),
    "1.2": (256, 256, 5e-5, (1.0, 0.1, 0.5), (768, 256, 512), "text_lm", 1),
    "1.3": (512, 1024, 5e-5, (1.0, 0.4, 0.5), (768, 256, 512), "text_lm", 4),
    "2.1": (512, 1024, 5e-5, (1.0, 0.5, 0.5), (384, 256, 384), "text_answer", 2),
    "2.2": (512, 1024, 5e-5, (0.05, 0.6, 0.4), (384, 256, 384), "text_answer", 2),
}


def stage_config(stage: str):
    text_len, img_tokens, lr, coeffs, batches, lm_objective, accum = STAGES[stage]
    c = base_config()
    c.name = f"mmada_8b_stage{stage.replace('.', '_')}"
    c.model = model_config("8b", remat="full", attention_impl="auto", dtype="bfloat16",
                           param_dtype="float32")
    c.tokens.preset = "mmada_8b"
    c.seq_len = text_len + img_tokens + 3  # [iPAD..] <|t2i|> <bos> text <eos> <|soi|> img <|eoi|>
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 1
    for task, coeff, b in zip(("t2i", "lm", "mmu"), coeffs, batches):
        c.tasks[task].coeff = coeff
        c.tasks[task].batch_size = b
    c.tasks.lm.objective = lm_objective
    c.optim.lr = lr
    c.optim.warmup_steps = 5000
    c.train.grad_accum = accum
    c.train.steps = 210_000 if stage == "2.1" else 100_000
    c.train.ckpt_every = 1000
    c.train.log_every = 10
    c.data.max_text_len = text_len
    return c
