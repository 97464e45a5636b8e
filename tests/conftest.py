"""Test setup: 8 fake CPU devices (set before JAX starts) and quiet logs."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _absl_flags():
    """grain workers and absl-based code expect parsed flags."""
    from absl import flags, logging
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    logging.set_verbosity(logging.WARNING)
