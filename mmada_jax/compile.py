"""Ahead-of-time compile of the real train step (and a logits step) for a TPU topology.

    python -m mmada_jax.compile --config experiments/stage1_1_8b.py --topology v5p-128
    python -m mmada_jax.compile --config experiments/pretrain_tiny.py --topology v5e:2x2
    python -m mmada_jax.compile --config experiments/stage2_1_8b.py --topology v5e-256 \
        --num_slices 2 --config.train.grad_accum=2

`--sample` adds the LLaDA text sampler's compiled loop (bf16 weights).

Runs on a CPU host with libtpu installed (no TPU attached): the topology's compile-only devices
form the mesh of `config.mesh`, the train state and the batch are ShapeDtypeStructs carrying
NamedShardings (never materialized), and the step is `training.step.jit_train_step`'s jitted
function, traced, lowered and compiled by the TPU compiler with the Pallas kernels lowered
through Mosaic. Prints per-chip HBM use against the chip's capacity, FLOPs per step, the mesh
and a sharding summary. Exit status: 0 fits, 2 does not fit (or XLA ran out of memory), 1 other
errors (with the message).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import time

GiB = 1024 ** 3

# Per chip: (chip config, HBM bytes, peak bf16 TFLOP/s, cores per chip as counted in pod names).
CHIPS = {
    "v4": ("megacore", 32 * GiB, 275.0, 2),
    "v5e": ("default", 16 * GiB, 197.0, 1),
    "v5p": ("megacore", 95 * GiB, 459.0, 2),
    "v6e": ("default", 32 * GiB, 918.0, 1),
}
# chips -> ICI topology of one slice
_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
_3D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8",
       256: "4x8x8", 512: "8x8x8", 1024: "8x8x16", 2048: "8x16x16", 4096: "16x16x16"}


class DoesNotFit(RuntimeError):
    """The compiled program needs more HBM per chip than the chip has."""


@dataclasses.dataclass(frozen=True)
class Topology:
    name: str            # as given, e.g. 'v5p-128' or 'v5e:2x2'
    generation: str      # v4 | v5e | v5p | v6e
    ici: str             # '4x4x4'
    num_slices: int
    chip_config: str
    hbm_bytes: int
    peak_tflops: float

    @property
    def topology_name(self) -> str:
        return f"{self.generation}:{self.ici}"

    @property
    def chips_per_slice(self) -> int:
        return math.prod(int(x) for x in self.ici.split("x"))

    @property
    def num_chips(self) -> int:
        return self.chips_per_slice * self.num_slices


def parse_topology(name: str, num_slices: int = 1) -> Topology:
    """'v5p-128' (pod name: v4/v5p count TensorCores, v5e/v6e chips) or 'v5e:2x2' (ICI shape)."""
    m = re.fullmatch(r"(v4|v5e|v5p|v6e|v5litepod)[-:](.+)", name.strip().lower())
    if not m:
        raise ValueError(f"--topology {name!r}: expected e.g. v5p-128, v5e-256, v6e-256 or "
                         f"v5e:2x2 (generations {sorted(CHIPS)})")
    gen, rest = m.group(1).replace("v5litepod", "v5e"), m.group(2)
    chip_cfg, hbm, peak, cores = CHIPS[gen]
    table = _3D if gen in ("v4", "v5p") else _2D
    if re.fullmatch(r"\d+(x\d+)+", rest):
        ici = rest
    elif rest.isdigit():
        n = int(rest)
        if n % cores or n // cores not in table:
            raise ValueError(f"--topology {name!r}: no {gen} slice with {n} "
                             f"{'cores' if cores > 1 else 'chips'}; known chip counts "
                             f"{sorted(table)}")
        ici = table[n // cores]
    else:
        raise ValueError(f"--topology {name!r}: cannot parse {rest!r}")
    if num_slices < 1:
        raise ValueError(f"--num_slices={num_slices} must be >= 1")
    return Topology(name, gen, ici, num_slices, chip_cfg, hbm, peak)


def topology_devices(topo: Topology):
    """Compile-only TPU devices of the topology (libtpu, no TPU needed)."""
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    # several compile jobs on one host (libtpu otherwise takes a host-wide lock file)
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    from jax.experimental import topologies
    kw = {"num_slices": topo.num_slices} if topo.num_slices > 1 else {}
    try:
        desc = topologies.get_topology_desc(topo.topology_name, "tpu", **kw)
    except Exception as e:  # libtpu missing or topology unknown to it
        raise RuntimeError(f"could not build TPU topology {topo.topology_name} "
                           f"(num_slices={topo.num_slices}): {e}. Is libtpu installed "
                           "(pip install -e .[tpu])?") from e
    devs = list(desc.devices)
    if len(devs) != topo.num_chips:
        raise RuntimeError(f"topology {topo.topology_name} x{topo.num_slices} gave {len(devs)} "
                           f"devices, expected {topo.num_chips}")
    return devs


def topology_mesh(config, topo: Topology, devices):
    """The config's (data, fsdp, tensor) mesh over the topology; across slices the `data` axis
    spans the slices (DCN), everything else stays inside a slice (ICI)."""
    import jax
    from jax.experimental import mesh_utils
    from jax.sharding import Mesh
    from mmada_jax.config import mesh_shape
    from mmada_jax.sharding import MESH_AXES, make_mesh
    if topo.num_slices == 1:
        return make_mesh(config.mesh, devices)
    sizes = mesh_shape(config.mesh, len(devices))
    if sizes["data"] % topo.num_slices:
        raise ValueError(f"config.mesh: data={sizes['data']} must be a multiple of the "
                         f"{topo.num_slices} slices (the data axis spans slices); e.g. "
                         f"--config.mesh.data={topo.num_slices} --config.mesh.fsdp=-1")
    ici = tuple(sizes["data"] // topo.num_slices if a == "data" else sizes[a] for a in MESH_AXES)
    dcn = tuple(topo.num_slices if a == "data" else 1 for a in MESH_AXES)
    dev = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices)
    return Mesh(dev, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def abstract_batch(config, shardings_fn):
    """The batch contract (docs/CONTRACTS.md) as ShapeDtypeStructs: global rows per task."""
    import jax
    import jax.numpy as jnp
    from mmada_jax.training.step import active_tasks
    L = int(config.seq_len)
    batch = {}
    for t in active_tasks(config):
        b = int(config.tasks[t].batch_size)
        batch[t] = dict(tokens=jax.ShapeDtypeStruct((b, L), jnp.int32),
                        key_mask=jax.ShapeDtypeStruct((b, L), jnp.bool_),
                        target_mask=jax.ShapeDtypeStruct((b, L), jnp.bool_))
    sh = shardings_fn(batch)
    return jax.tree_util.tree_map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), batch, sh)


# ------------------------------------------------------------------------- reporting
def memory_summary(compiled) -> dict:
    """Per-chip bytes from XLA's memory analysis (arguments + outputs - aliased + temporaries)."""
    ma = compiled.memory_analysis()
    if ma is None:
        return {}
    get = lambda k: int(getattr(ma, k, 0) or 0)  # noqa: E731
    out = dict(arguments=get("argument_size_in_bytes"), outputs=get("output_size_in_bytes"),
               aliased=get("alias_size_in_bytes"), temporaries=get("temp_size_in_bytes"),
               code=get("generated_code_size_in_bytes"))
    out["total"] = (out["arguments"] + out["outputs"] - out["aliased"] + out["temporaries"]
                    + out["code"])
    return out


def cost_flops(compiled) -> float | None:
    """FLOPs per chip of the compiled (partitioned) program, from XLA's cost analysis."""
    try:
        ca = compiled.cost_analysis()
    except Exception:
        return None
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else None
    if not ca:
        return None
    return float(ca.get("flops", 0.0)) or None


def _spec_str(sharding) -> str:
    spec = getattr(sharding, "spec", None)
    return "replicated" if spec is None or all(s is None for s in spec) else str(tuple(spec))


def sharding_summary(abstract_params, limit: int = 16) -> list[str]:
    """One line per parameter: global shape, PartitionSpec, per-chip shard shape."""
    from mmada_jax.training.checkpoint import flatten_with_names
    lines = []
    for name, a in flatten_with_names(abstract_params).items():
        sh = a.sharding
        shard = sh.shard_shape(a.shape) if sh is not None else a.shape
        lines.append(f"  {name:<34} {str(tuple(a.shape)):<22} {_spec_str(sh):<28} "
                     f"per chip {tuple(shard)}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"  ... ({len(lines)} parameters)"]
    return lines


def _gib(x) -> str:
    """Bytes in GiB, or MiB / KiB for small programs."""
    for unit, size in (("GiB", GiB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if abs(x) >= size or unit == "KiB":
            return f"{x / size:.2f} {unit}"


def pallas_kernel_count(compiled) -> int:
    """Mosaic (Pallas TPU) custom calls in the compiled program."""
    try:
        return compiled.as_text().count("tpu_custom_call")
    except Exception:
        return 0


def check_fits(name: str, total_bytes: int, topo: Topology) -> None:
    """Raise DoesNotFit when a program's per-chip bytes exceed the chip's HBM."""
    if total_bytes > topo.hbm_bytes:
        raise DoesNotFit(f"{name} step needs {_gib(total_bytes)} per chip, more than the "
                         f"{_gib(topo.hbm_bytes)} of a {topo.generation} chip; lower the "
                         "batch, raise config.train.grad_accum, use config.model.remat="
                         "'full' or add chips")


# ------------------------------------------------------------------------- compile
def _compile_config(config, attention: str | None):
    """Kernels for TPU: 'auto'/'pallas' (which resolve by the host backend) -> 'pallas_tpu'."""
    from mmada_jax.config import apply_overrides
    impl = attention or config.model.attention_impl
    if impl in ("auto", "pallas"):
        impl = "pallas_tpu"
    return apply_overrides(config, {"model.attention_impl": impl})


def compile_for_topology(config, topology: str | Topology, *, num_slices: int = 1,
                         attention: str | None = None, forward: bool = True,
                         sample: bool = False, sample_batch: int | None = None,
                         log=print) -> dict:
    """Compile the train step (and a logits step) of `config` for `topology`. Returns a report
    dict; raises DoesNotFit when a program needs more HBM per chip than the chip has."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P
    from mmada_jax.kernels import common as kernels_common
    from mmada_jax.model import param_count
    from mmada_jax.sharding import use_mesh
    from mmada_jax.training import loop
    from mmada_jax.training.flops import train_flops_per_token
    from mmada_jax.training.step import active_tasks, batch_shardings, jit_train_step

    topo = topology if isinstance(topology, Topology) else parse_topology(topology, num_slices)
    config = _compile_config(config, attention)
    t0 = time.perf_counter()
    devices = topology_devices(topo)
    mesh = topology_mesh(config, topo, devices)
    # loop.build validates the config against the device count and builds the state shardings
    # on the config's mesh; we rebuild them on the topology mesh (hybrid for multi-slice).
    setup = loop.build(config, devices)
    if topo.num_slices > 1:
        from mmada_jax.training.step import state_shardings
        abstract, shardings = state_shardings(setup.model, setup.tx, config, mesh)
        setup = dataclasses.replace(setup, mesh=mesh, abstract_state=abstract,
                                    state_shardings=shardings)
    mesh = setup.mesh
    batch = abstract_batch(config, lambda b: batch_shardings(b, mesh))
    step = jit_train_step(setup.model, setup.tx, config, setup.layout, mesh,
                          setup.state_shardings, batch, setup.lr_schedule)
    n_params = param_count(setup.abstract_state.params)
    tasks = active_tasks(config)
    rows = sum(int(config.tasks[t].batch_size) for t in tasks)
    log(f"topology {topo.name}: {topo.topology_name} x{topo.num_slices} slice(s), "
        f"{topo.num_chips} chips ({devices[0].device_kind}), {_gib(topo.hbm_bytes)} HBM each")
    log(f"mesh {dict(mesh.shape)}; model {n_params:,} params "
        f"({config.model.param_dtype}), compute {config.model.dtype}, remat "
        f"{config.model.remat!r}, attention {config.model.attention_impl!r}")
    split = ", ".join(f"{t} {config.tasks[t].batch_size}" for t in tasks)
    log(f"batch {rows} rows x {config.seq_len} tokens ({split}), "
        f"grad_accum {config.train.grad_accum}")
    log("sharding (parameters; optimizer moments follow them; batch rows over "
        f"('data', 'fsdp') = {mesh.shape['data'] * mesh.shape['fsdp']} ways):")
    for line in sharding_summary(setup.abstract_state.params):
        log(line)

    report = dict(topology=topo.name, topology_name=topo.topology_name,
                  num_slices=topo.num_slices, chips=topo.num_chips,
                  device_kind=devices[0].device_kind, hbm_per_chip=topo.hbm_bytes,
                  mesh=dict(mesh.shape), params=n_params, rows=rows,
                  seq_len=int(config.seq_len), programs={})

    def run(name, jitted, *args):
        t = time.perf_counter()
        with use_mesh(mesh), kernels_common.interpret_mode(False):
            try:
                compiled = jitted.trace(*args).lower().compile()
            except Exception as e:  # XLA's own out-of-memory check
                msg = str(e)
                if "RESOURCE_EXHAUSTED" in msg or "out of memory" in msg.lower():
                    raise DoesNotFit(f"{name} step does not fit on {topo.name}: "
                                     f"{msg.splitlines()[0][:600]}") from e
                raise
        secs = time.perf_counter() - t
        mem = memory_summary(compiled)
        flops = cost_flops(compiled)
        entry = dict(compile_s=secs, memory=mem, flops_per_chip=flops,
                     pallas_kernels=pallas_kernel_count(compiled))
        report["programs"][name] = entry
        total = mem.get("total", 0)
        log(f"[{name}] compiled in {secs:.1f}s; HBM per chip {_gib(total)} of "
            f"{_gib(topo.hbm_bytes)} ({100 * total / topo.hbm_bytes:.1f}%): arguments "
            f"{_gib(mem.get('arguments', 0))}, outputs {_gib(mem.get('outputs', 0))}, aliased "
            f"{_gib(mem.get('aliased', 0))}, temporaries {_gib(mem.get('temporaries', 0))}; "
            f"{entry['pallas_kernels']} Pallas TPU kernel call(s)")
        if flops:
            note = (" (XLA counts a loop body once -- scanned layers, accumulation, sampler "
                    "steps -- so this is a lower bound)")
            log(f"[{name}] XLA cost analysis: {flops:.4g} FLOP per chip per step, "
                f"{flops * topo.num_chips:.4g} over {topo.num_chips} chips{note}")
        check_fits(name, total, topo)
        return entry

    run("train", step.jitted, setup.abstract_state, batch)
    analytic = train_flops_per_token(setup.model.cfg, config.seq_len) * rows * config.seq_len
    report["model_flops_per_step"] = analytic
    ideal = analytic / (topo.num_chips * topo.peak_tflops * 1e12)
    log(f"[train] model FLOPs per step (6N + attention, counted whole): {analytic:.4g}; at "
        f"100% of {topo.peak_tflops:.0f} TFLOP/s per chip a step takes {ideal:.2f} s")

    if forward:
        dp = mesh.shape["data"] * mesh.shape["fsdp"]
        b = int(sample_batch or dp)
        rows_sh = NamedSharding(mesh, P(("data", "fsdp"), None))
        tokens = jax.ShapeDtypeStruct((b, int(config.seq_len)), jnp.int32, sharding=rows_sh)
        model = setup.model
        logits_fn = jax.jit(lambda params, toks: model.apply({"params": params}, toks),
                            in_shardings=(setup.state_shardings.params, rows_sh))
        run("logits", logits_fn, setup.abstract_state.params, tokens)
    if sample:
        sample_program(setup, config, mesh, run, sample_batch, log)
    report["total_s"] = time.perf_counter() - t0
    return report


def sample_program(setup, config, mesh, run, batch=None, log=print):
    """Compile the LLaDA text sampler's whole loop (mmada_jax.sampling) with bf16 weights (as
    `hf.load_pretrained` gives them): gen_length min(256, seq_len // 2), block 32, one token per
    step, prompt = the rest of seq_len."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P
    from mmada_jax.sampling import TextSamplerConfig, make_logits_fn
    from mmada_jax.sampling.text import text_ids, text_loop
    L = int(config.seq_len)
    gen = min(256, L // 2)
    block = min(32, gen)
    gen -= gen % block
    scfg = TextSamplerConfig(gen_length=gen, steps=gen, block_length=block)
    ids = text_ids(setup.layout)
    dp = mesh.shape["data"] * mesh.shape["fsdp"]
    b = int(batch or dp)
    rows = NamedSharding(mesh, P(("data", "fsdp"), None))
    prompt = jax.ShapeDtypeStruct((b, L - gen), jnp.int32, sharding=rows)
    pmask = jax.ShapeDtypeStruct((b, L - gen), jnp.bool_, sharding=rows)
    keys = jax.ShapeDtypeStruct((b,), jax.random.key(0).dtype,
                                sharding=NamedSharding(mesh, P(("data", "fsdp"))))
    params = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, jnp.bfloat16, sharding=a.sharding),
        setup.abstract_state.params)
    model = setup.model

    def sample(params, prompt, pmask, keys):
        return text_loop(make_logits_fn(model, params), prompt, pmask, keys, scfg, ids).tokens

    log(f"[sample_text] LLaDA sampler: {b} rows, prompt {L - gen} + gen {gen} tokens, block "
        f"{block}, {gen} steps, bf16 weights")
    return run("sample_text", jax.jit(sample), params, prompt, pmask, keys)


# ------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    from absl import flags
    from ml_collections import config_flags

    flags_ = flags.FlagValues()
    cfg_flag = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                               flag_values=flags_, lock_config=True)
    flags.DEFINE_string("topology", "v5p-128", "v5p-128 | v5e-256 | v6e-256 | v5e:2x2 ...",
                        flag_values=flags_)
    flags.DEFINE_integer("num_slices", 1, "Slices (multi-slice over DCN).", flag_values=flags_)
    flags.DEFINE_string("attention", None, "Override config.model.attention_impl.",
                        flag_values=flags_)
    flags.DEFINE_bool("forward", True, "Also compile a logits (sampling) step.",
                      flag_values=flags_)
    flags.DEFINE_bool("sample", False, "Also compile the LLaDA text sampler's loop.",
                      flag_values=flags_)
    flags.DEFINE_integer("sample_batch", None, "Rows of the logits / sampler steps (default: "
                         "the data-parallel size).", flag_values=flags_)
    flags.DEFINE_string("json", None, "Write the report as JSON here.", flag_values=flags_)
    argv = sys.argv if argv is None else argv
    flags_(argv)
    if cfg_flag.value is None:
        print("error: --config is required", file=sys.stderr)
        return 1
    try:
        report = compile_for_topology(cfg_flag.value, flags_.topology,
                                      num_slices=flags_.num_slices, attention=flags_.attention,
                                      forward=flags_.forward, sample=flags_.sample,
                                      sample_batch=flags_.sample_batch)
    except DoesNotFit as e:
        print(f"DOES NOT FIT: {e}", file=sys.stderr, flush=True)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"OK: fits on {report['topology']} ({report['total_s']:.1f}s)", flush=True)
    if flags_.json:
        import json
        with open(flags_.json, "w") as f:
            json.dump(report, f, indent=2, default=float)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    sys.exit(main())
