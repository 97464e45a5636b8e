"""The demo's own config (budgets, tokenizer phase, eval sizes, step caps): `make demo` uses the
'cpu' variant. Override any field from the command line:

    python -m mmada_jax.demo --workdir runs/demo --config experiments/demo.py:cpu \
        --config.budget.pretrain=600 --config.steps.sft=400
"""


def get_config(arg=None):
    from mmada_jax.demo import demo_config
    return demo_config(arg or "cpu")
