"""mmada-jax: a JAX/Flax, TPU-native reimplementation of MMaDA.

Model, kernel and sampler modules import only jax/flax/optax/numpy; the data stack (grain,
tensorflow-datasets) is imported lazily by the data modules.
"""

__version__ = "0.1.0"
