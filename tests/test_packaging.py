"""Every package is listed in setup.cfg, and `kernels/` is importable only as mmada_jax.kernels."""

import configparser
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _listed():
    cp = configparser.ConfigParser()
    cp.read(os.path.join(ROOT, "setup.cfg"))
    return {p.strip() for p in cp["options"]["packages"].split() if p.strip()}


def test_all_packages_listed():
    found = set()
    for base, name in (("mmada_jax", "mmada_jax"), ("kernels", "mmada_jax.kernels")):
        for d, _, files in os.walk(os.path.join(ROOT, base)):
            if "__init__.py" in files and "__pycache__" not in d:
                rel = os.path.relpath(d, os.path.join(ROOT, base))
                found.add(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    missing = found - _listed()
    assert not missing, f"add to setup.cfg [options] packages: {sorted(missing)}"


def test_kernels_is_not_a_top_level_name():
    """Outside the source tree, the installed package exposes mmada_jax.kernels only."""
    import subprocess
    import sys
    code = ("import importlib.util, mmada_jax.kernels; "
            "s = importlib.util.find_spec('kernels'); "
            "assert s is None or '/work/main/kernels' not in (s.origin or '').replace('\\\\', '/')"
            ", s")
    code = code.replace("/work/main", ROOT)
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/",
                   env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_model_imports_without_data_stack():
    import subprocess
    import sys
    code = ("import sys; import mmada_jax.model, mmada_jax.sampling, mmada_jax.kernels; "
            "bad=[m for m in ('grain','tensorflow_datasets') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/",
                   env=dict(os.environ, JAX_PLATFORMS="cpu"))
