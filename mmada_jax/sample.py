"""Sample from a trained run: text, text-to-image, or image understanding.

    python -m mmada_jax.sample --config experiments/pretrain_tiny.py --workdir runs/tiny \\
        --task text --prompt "What is 2+3?" --out samples/
    python -m mmada_jax.sample ... --task t2i --prompts_file captions.txt --steps 15 --cfg 3.5
    python -m mmada_jax.sample ... --task mmu --image cat.png --prompt "What is this?"

Loads the newest checkpoint under --workdir, batches the prompts (--prompt, repeatable, and/or
--prompts_file with one prompt per line), shows progress, and writes `<out>/<task>.jsonl`
(one record per prompt) plus, for t2i, one PNG per image and `<out>/t2i_grid.png`.
Speed switches (approximations, off by default): --threshold, --cache prefix|dual,
--stop_at_eos, --image_prefix_cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m mmada_jax.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="experiment file[:arg]")
    p.add_argument("--workdir", required=True, help="run directory (checkpoints/ inside)")
    p.add_argument("--task", required=True, choices=["text", "t2i", "mmu"])
    p.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    p.add_argument("--prompts_file", help="text file, one prompt per line")
    p.add_argument("--image", action="append", default=[],
                   help="mmu: image path (one, or one per prompt)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param_dtype", default="bfloat16", help="inference dtype ('' keeps it)")
    p.add_argument("--tokenizer", help="text tokenizer path (default: config.data.tokenizer)")
    p.add_argument("--magvit", help="MAGVIT-v2 weights (.safetensors/.bin); default: pool codec")
    p.add_argument("--no_chat", action="store_true", help="text: raw <bos> prompt, no template")
    p.add_argument("--think", action="store_true", help="prepend the thinking prefix")
    # text / mmu
    p.add_argument("--gen_length", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--block_length", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--remasking", default="low_confidence")
    p.add_argument("--cfg", type=float, default=None, help="CFG scale (text default 0, t2i 3.5)")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--cache", default="none", choices=["none", "prefix", "dual"])
    p.add_argument("--stop_at_eos", action="store_true")
    # t2i
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--num_image_tokens", type=int, default=None,
                   help="default: config.data.num_image_tokens")
    p.add_argument("--image_size", type=int, default=None, help="default: config.data.image_size")
    p.add_argument("--max_text_len", type=int, default=None, help="default: config.data's")
    p.add_argument("--image_prefix_cache", action="store_true")
    return p.parse_args(argv)


def read_prompts(args) -> list[str]:
    prompts = list(args.prompt)
    if args.prompts_file:
        with open(args.prompts_file) as f:
            prompts += [line.rstrip("\n") for line in f if line.strip()]
    if not prompts:
        raise SystemExit("no prompts: give --prompt and/or --prompts_file")
    return prompts


def text_config(args, default_gen: int):
    from mmada_jax.sampling import TextSamplerConfig
    gen = args.gen_length or default_gen
    return TextSamplerConfig(
        gen_length=gen, steps=args.steps or gen, block_length=args.block_length or min(32, gen),
        temperature=args.temperature or 0.0, remasking=args.remasking,
        cfg_scale=args.cfg or 0.0, threshold=args.threshold, cache=args.cache,
        stop_at_eos=args.stop_at_eos).validate()


def image_config(args):
    from mmada_jax.sampling import ImageSamplerConfig
    return ImageSamplerConfig(
        steps=args.steps or 15, guidance_scale=3.5 if args.cfg is None else args.cfg,
        temperature=1.0 if args.temperature is None else args.temperature,
        schedule=args.schedule, prefix_cache=args.image_prefix_cache).validate()


def to_uint8(images):
    return np.clip((np.asarray(images, np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def save_grid(images_u8, path: str, cols: int | None = None):
    from PIL import Image
    n, h, w, _ = images_u8.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    grid = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, im in enumerate(images_u8):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    Image.fromarray(grid).save(path)


def load_image(path: str, size: int):
    from PIL import Image
    if not os.path.exists(path):
        raise FileNotFoundError(f"--image {path}: no such file")
    im = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return np.asarray(im, np.float32) / 127.5 - 1.0


def progress_printer(task: str):
    t0 = time.perf_counter()

    def show(done, total):
        print(f"[{task}] {done}/{total} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr,
              flush=True)
    return show


def main(argv=None) -> dict:
    args = parse_args(argv)
    import jax
    from mmada_jax.sampling.api import Sampler
    prompts = read_prompts(args)
    s = Sampler.from_workdir(args.config, args.workdir, magvit=args.magvit,
                             param_dtype=args.param_dtype or None, batch_size=args.batch_size,
                             progress=progress_printer(args.task),
                             num_image_tokens=args.num_image_tokens,
                             image_size=args.image_size, max_text_len=args.max_text_len)
    if args.tokenizer:
        from mmada_jax.tokenizers import load_text_tokenizer
        s.tokenizer = load_text_tokenizer(args.tokenizer, s.layout)
    os.makedirs(args.out, exist_ok=True)
    key = jax.random.key(args.seed)
    print(f"loaded step {s.step} from {args.workdir}; {len(prompts)} prompt(s)", file=sys.stderr)
    records = []
    if args.task == "text":
        cfg = text_config(args, 128)
        outs = s.text(prompts, cfg, key, chat=not args.no_chat, think=args.think)
        records = [dict(prompt=p, output=o) for p, o in zip(prompts, outs)]
    elif args.task == "t2i":
        cfg = image_config(args)
        codes, images = s.t2i(prompts, cfg, key)
        u8 = to_uint8(images)
        from PIL import Image
        for i, (p, im) in enumerate(zip(prompts, u8)):
            name = f"t2i_{i:04d}.png"
            Image.fromarray(im).save(os.path.join(args.out, name))
            records.append(dict(prompt=p, image=name, codes=np.asarray(codes[i]).tolist()))
        save_grid(u8, os.path.join(args.out, "t2i_grid.png"))
    else:
        if not args.image:
            raise SystemExit("--task mmu needs --image")
        paths = args.image * len(prompts) if len(args.image) == 1 else args.image
        if len(paths) != len(prompts):
            raise SystemExit(f"--task mmu: {len(paths)} images for {len(prompts)} prompts")
        size = int(round(np.sqrt(s.num_image_tokens))) * s.pixels_per_token
        images = np.stack([load_image(p, size) for p in paths])
        cfg = text_config(args, 64)
        outs = s.mmu(images, prompts, cfg, key, think=args.think)
        records = [dict(prompt=p, image=i, output=o) for p, i, o in zip(prompts, paths, outs)]
    with open(os.path.join(args.out, f"{args.task}.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    for r in records:
        print(json.dumps({k: v for k, v in r.items() if k != "codes"}))
    return dict(records=records, sampler=s)


if __name__ == "__main__":
    main()
