"""ShapesWorld as a tensorflow-datasets builder writing array_record files (no TensorFlow needed).

Each record: `image` (PNG bytes, decoded by the pipeline so a bad image is counted, not fatal),
`scene` (JSON list of objects), `kind` ('scene' or 'knowledge'), `index`. Records are a pure
function of (seed, split, index). `load_split` builds the dataset into `data_dir` on first use and
reuses it after; `ShapesWorldSource` is the picklable random-access source grain reads.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os

import numpy as np

from mmada_jax.data.shapesworld import knowledge, scenes

SPLITS = ("train", "test")
_SPLIT_IDS = {"train": 0, "test": 1}


def record(seed: int, split: str, index: int, image_size: int, knowledge_fraction: float,
           max_objects: int = scenes.MAX_OBJECTS) -> dict:
    """The record at `index` (python values; the image as PNG bytes)."""
    from PIL import Image  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
    if rng.random() < knowledge_fraction:
        kind, scene = "knowledge", knowledge.knowledge_scene(rng, split, max_objects)
    else:
        kind, scene = "scene", scenes.random_scene(rng, split, max_objects=max_objects)
    buf = io.BytesIO()
    Image.fromarray(scenes.render(scene, image_size)).save(buf, format="PNG")
    return dict(image=buf.getvalue(), scene=scene.to_json(), kind=kind, index=index)


@functools.lru_cache(maxsize=None)
def _builder_cls():
    """Defined lazily so importing this module needs no tfds; cached since tfds registers names."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    @dataclasses.dataclass
    class ShapesWorldConfig(tfds.core.BuilderConfig):
        image_size: int = 64
        num_train: int = 20000
        num_test: int = 1000
        seed: int = 0
        knowledge_fraction: float = 0.2
        max_objects: int = scenes.MAX_OBJECTS

    class ShapesWorld(tfds.core.GeneratorBasedBuilder):
        """Procedural multimodal scenes: shapes, colors, sizes on a 3x3 grid."""

        VERSION = tfds.core.Version("1.0.0")
        BUILDER_CONFIGS = [ShapesWorldConfig(name="default")]

        def _info(self):
            return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(), dtype=np.object_),
                "scene": tfds.features.Text(),
                "kind": tfds.features.Text(),
                "index": tfds.features.Scalar(dtype=np.int64),
            }))

        def _split_generators(self, dl_manager):
            c = self.builder_config
            return {"train": self._generate_examples("train", c.num_train),
                    "test": self._generate_examples("test", c.num_test)}

        def _generate_examples(self, split, n):
            c = self.builder_config
            for i in range(n):
                yield i, record(c.seed, split, i, c.image_size, c.knowledge_fraction,
                                c.max_objects)

    return ShapesWorld, ShapesWorldConfig


def config_name(image_size: int, num_train: int, num_test: int, seed: int,
                knowledge_fraction: float, max_objects: int = scenes.MAX_OBJECTS) -> str:
    name = (f"s{image_size}_n{num_train}_{num_test}_seed{seed}"
            f"_k{int(round(knowledge_fraction * 100))}")
    return name if max_objects == scenes.MAX_OBJECTS else f"{name}_m{max_objects}"


def make_builder(data_dir: str, image_size: int = 64, num_train: int = 20000,
                 num_test: int = 1000, seed: int = 0, knowledge_fraction: float = 0.2,
                 max_objects: int = scenes.MAX_OBJECTS):
    """The tfds builder for these settings (not built yet: see `ensure_built`)."""
    if not 16 <= image_size <= 256:
        raise ValueError(f"ShapesWorld image_size {image_size} outside [16, 256]")
    max_objects = scenes.check_max_objects(max_objects)
    cls, cfg_cls = _builder_cls()
    cfg = cfg_cls(name=config_name(image_size, num_train, num_test, seed, knowledge_fraction,
                                   max_objects),
                  image_size=image_size, num_train=num_train, num_test=num_test, seed=seed,
                  knowledge_fraction=knowledge_fraction, max_objects=max_objects)
    return cls(data_dir=os.path.expanduser(data_dir), config=cfg, file_format="array_record")


def is_built(builder) -> bool:
    return os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def ensure_built(builder, build: bool = True):
    """Build into the data directory on first use; with `build=False` a missing dataset raises an
    error that says how to build it."""
    if is_built(builder):
        return builder
    if not build:
        raise FileNotFoundError(
            f"ShapesWorld is not built in {builder.data_dir}. Build it with "
            f"`python -m mmada_jax.data.shapesworld.build --data_dir {builder._data_dir_root}` "
            "or set config.data.build_if_missing=True.")
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds.disable_progress_bar()
    builder.download_and_prepare()
    return builder


class ShapesWorldSource:
    """Random-access, picklable source over one built split; opens the files lazily per process.

    Items: dict(image=PNG bytes, scene=JSON str, kind=str, index=int).
    """

    def __init__(self, data_dir: str, split: str, **builder_kwargs):
        if split not in SPLITS:
            raise ValueError(f"ShapesWorld split must be one of {SPLITS}, got {split!r}")
        self.data_dir, self.split, self.builder_kwargs = data_dir, split, dict(builder_kwargs)
        b = make_builder(data_dir, **builder_kwargs)
        if not is_built(b):
            ensure_built(b, build=False)
        self._len = b.info.splits[split].num_examples
        self._ds = None

    def _open(self):
        if self._ds is None:
            self._ds = make_builder(self.data_dir, **self.builder_kwargs).as_data_source(
                split=self.split)
        return self._ds

    def __len__(self):
        return self._len

    def __getitem__(self, i):
        r = self._open()[int(i)]
        return dict(image=r["image"], scene=_s(r["scene"]), kind=_s(r["kind"]),
                    index=int(r["index"]))

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_ds"] = None
        return d

    def __repr__(self):
        kw = ",".join(f"{k}={v}" for k, v in sorted(self.builder_kwargs.items()))
        return f"ShapesWorldSource({self.data_dir},{self.split},{kw})"


def _s(x):
    return x.decode() if isinstance(x, bytes) else str(x)
