"""Benchmarks by name: `read(path) -> records` and `score(outputs, records) -> metrics dict`.

`outputs` are the model's responses (strings) for text/understanding benchmarks, detections per
image for 'geneval', parsed scenes (lists of ParsedObject) for 'scene_geneval', and objects per
image for 'wise'. A fork adds a benchmark with `register_benchmark(name, read, score)` in its
own module.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from mmada_jax.evals import geneval, gsm8k, mmlu, pope, scene_geneval, vqav2, wise
from mmada_jax.evals.io import read_jsonl
from mmada_jax.rl.registry import Registry


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    read: Callable[[str], list[dict]]
    score: Callable[[Sequence[Any], Sequence[dict]], dict]
    headline: str  # the metric the paper reports


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register_benchmark(name: str, read, score, headline: str = "accuracy") -> Benchmark:
    b = Benchmark(name, read, score, headline)
    BENCHMARKS.register(name)(b)
    return b


def get_benchmark(name: str) -> Benchmark:
    return BENCHMARKS.get(name)


register_benchmark("gsm8k", gsm8k.read_gsm8k,
                   lambda out, recs: gsm8k.score_gsm8k(out, [r["reference"] for r in recs]))
register_benchmark("mmlu", mmlu.read_mmlu, mmlu.score_mmlu)
register_benchmark("pope", pope.read_pope, pope.score_pope, headline="f1")
register_benchmark("vqav2", vqav2.read_vqav2, vqav2.score_vqav2)
register_benchmark("geneval", geneval.read_geneval_metadata,
                   lambda out, recs: geneval.score_geneval(recs, out), headline="overall")
register_benchmark("scene_geneval", lambda p: read_jsonl(p, required=("tag", "include")),
                   lambda out, recs: scene_geneval.score_scenes(recs, out), headline="overall")
register_benchmark("wise", wise.read_wise,
                   lambda out, recs: wise.score_wise_attributes(recs, out))
