# mmada-jax: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

# Find a Python 3.12 interpreter: $PYTHON, python3.12 on PATH, pyenv's 3.12.x, common locations.
define find_python312
for c in "$$PYTHON" python3.12 \
    "$$(command -v pyenv >/dev/null 2>&1 && PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null)" \
    $$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null) \
    /usr/local/bin/python3.12 /usr/bin/python3.12; do \
  [ -n "$$c" ] || continue; \
  if PYENV_VERSION=3.12.1 "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then \
    echo "$$c"; exit 0; fi; \
done; echo "error: no Python 3.12 found (set PYTHON=/path/to/python3.12)" >&2; exit 1
endef

.PHONY: venv test demo bench-cpu clean lint

$(STAMP): setup.cfg pyproject.toml
	@set -e; \
	if [ ! -x "$(PY)" ] || ! $(PY) -c 'import sys; assert sys.version_info[:2]==(3,12)' 2>/dev/null; then \
	  py=$$($(find_python312)); echo "creating $(VENV) with $$py"; \
	  rm -rf $(VENV); PYENV_VERSION=3.12.1 "$$py" -m venv $(VENV); fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,tpu]'
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	XLA_FLAGS="--xla_force_host_platform_device_count=8" JAX_PLATFORMS=cpu \
	  $(PY) -m pytest -n $(PYTEST_WORKERS) -q tests

demo: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m mmada_jax.demo --workdir runs/demo

clean:
	rm -rf $(VENV) runs build *.egg-info
