"""Pallas attention kernels, importable as `mmada_jax.kernels` (the folder is mapped there)."""
