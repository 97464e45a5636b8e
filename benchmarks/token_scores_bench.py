"""The shared per-token scores (`objectives.token_scores`) against the previous form (a second
argmax over the vocabulary for 'hit'), forward + backward of the mean CE plus the hit count, at
one batch's logits shape.

    python benchmarks/token_scores_bench.py --shape 192,160,2089 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="192,160,2089", help="B,L,V (the gpu ShapesWorld batch)")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--iters", type=int, default=50)
    a = ap.parse_args()
    import jax
    import jax.numpy as jnp
    from mmada_jax.objectives.base import token_cross_entropy, token_scores

    def previous(logits, targets):
        return dict(ce=token_cross_entropy(logits, targets),
                    hit=jnp.argmax(logits, axis=-1) == targets)

    b, l, v = map(int, a.shape.split(","))
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    logits = jax.random.normal(k1, (b, l, v), jnp.float32).astype(a.dtype)
    targets = jax.random.randint(k2, (b, l), 0, v)
    out = {"device": jax.devices()[0].device_kind, "shape": [b, l, v], "dtype": a.dtype}
    for name, fn in (("previous_argmax", previous), ("token_scores", token_scores)):
        def loss(x):
            s = fn(x, targets)
            return s["ce"].mean(), s["hit"].sum()
        step = jax.jit(jax.value_and_grad(loss, has_aux=True))
        jax.block_until_ready(step(logits))
        t0 = time.perf_counter()
        for _ in range(a.iters):
            r = step(logits)
        jax.block_until_ready(r)
        out[name + "_ms"] = round((time.perf_counter() - t0) / a.iters * 1e3, 3)
        out[name + "_hits"] = int(r[0][1])
    out["ratio"] = round(out["previous_argmax_ms"] / out["token_scores_ms"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
