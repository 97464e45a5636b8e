"""Build the ShapesWorld TFDS dataset (array_record) into a data directory.

    python -m mmada_jax.data.shapesworld.build --data_dir ~/.cache/mmada_jax/data --image_size 64
"""

from __future__ import annotations

import argparse

from mmada_jax.data.shapesworld import builder


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default="~/.cache/mmada_jax/data")
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--num_train", type=int, default=20000)
    p.add_argument("--num_test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knowledge_fraction", type=float, default=0.2)
    p.add_argument("--max_objects", type=int, default=4, help="objects per scene, 1..4")
    a = p.parse_args(argv)
    b = builder.make_builder(a.data_dir, a.image_size, a.num_train, a.num_test, a.seed,
                             a.knowledge_fraction, a.max_objects)
    builder.ensure_built(b)
    print(f"ShapesWorld ready in {b.data_dir}")


if __name__ == "__main__":
    main()
