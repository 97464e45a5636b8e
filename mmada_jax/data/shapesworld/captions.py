"""How scene captions are written: one registered class per style, picked by
`config.data.shapesworld.caption_style` and used wherever a caption is made (t2i prompts in
training and evaluation, captioning answers, the pre-training corpus's scene descriptions).

  varied  every object as one of three phrase templates in a random order, inside one of five
          caption templates ("On a dark background: in the top, a large red triangle and ...")
  plain   one template, objects in reading order ("A large red triangle in the top and a small
          blue circle in the bottom left."): the CPU demo's captions. At the CPU demo's sizes a
          model binds such captions to image cells faster (t2i only, 800 steps of 12 rows: the
          cells right 0.96 vs 0.80, object F1 0.11 vs 0.02; BENCHMARKS.md)

Every style names each object's size, color, shape and cell, so the caption determines the image.
A new style is a file with a subclass registered by name:

    from mmada_jax.data.shapesworld.captions import CaptionStyle, register_caption_style

    @register_caption_style("listed")
    class Listed(CaptionStyle):
        def caption(self, scene, rng):
            return "; ".join(plain_phrase(o) for o in by_cell(scene.objects)) + "."
"""

from __future__ import annotations

import numpy as np

from mmada_jax.data.shapesworld import scenes as sc
from mmada_jax.data.shapesworld.vqa_cot import by_cell, join_phrases
from mmada_jax.rl.registry import Registry

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTION_STYLES: Registry["CaptionStyle"] = Registry("caption style")


def register_caption_style(name: str):
    """Class decorator: register an instance of the class as caption style `name`."""
    def deco(cls):
        CAPTION_STYLES.register(name)(cls())
        return cls
    return deco


def get_caption_style(name: str) -> "CaptionStyle":
    if name not in CAPTION_STYLES:
        raise ValueError(f"caption style {name!r} unknown; known {tuple(CAPTION_STYLES.names())}")
    return CAPTION_STYLES.get(name)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def plain_phrase(o: sc.Obj) -> str:
    """'a large red triangle in the bottom left'."""
    return (f"{article(o.size)} {o.size} {o.color} {o.shape} in the "
            f"{sc.position_name(o.row, o.col)}")


class CaptionStyle:
    def caption(self, scene: sc.Scene, rng: np.random.Generator) -> str:
        raise NotImplementedError


@register_caption_style("varied")
class VariedCaption(CaptionStyle):
    """Random object order, three phrase templates, five caption templates."""

    def object_phrase(self, o: sc.Obj, rng: np.random.Generator) -> str:
        pos = sc.position_name(o.row, o.col)
        t = _pick(rng, ("{art} {size} {color} {shape} in the {pos}",
                        "{art} {size} {color} {shape} at the {pos}",
                        "in the {pos}, {art} {size} {color} {shape}"))
        return t.format(art=article(o.size), size=o.size, color=o.color, shape=o.shape, pos=pos)

    def caption(self, scene, rng):
        objs = list(scene.objects)
        order = rng.permutation(len(objs))
        phrases = [self.object_phrase(objs[i], rng) for i in order]
        n = len(objs)
        body = join_phrases(phrases)
        noun = "shape" if n == 1 else "shapes"
        t = _pick(rng, ("{Body}.", "A picture of {body}.", "There {be} {n} {noun}: {body}.",
                        "On a dark background: {body}.", "An image with {body}."))
        return t.format(Body=body[0].upper() + body[1:], body=body, n=NUMBER_WORDS[n],
                        noun=noun, be="is" if n == 1 else "are")


@register_caption_style("plain")
class PlainCaption(CaptionStyle):
    """Objects in reading order (by cell), one phrase template, no frame; draws nothing."""

    def caption(self, scene, rng):
        body = join_phrases([plain_phrase(o) for o in by_cell(scene.objects)])
        return body[0].upper() + body[1:] + "."
