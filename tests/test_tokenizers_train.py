"""Tokenizer training: loss pieces, the pure train step, and the trainer end to end (tiny)."""

import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from mmada_jax.tokenizers import lfq
from mmada_jax.tokenizers.magvit import MAGVITv2, MagvitConfig, init_params
from mmada_jax.tokenizers.shapes_data import ShapesWorldImages, heldout_set
from mmada_jax.tokenizers.training import (check_loss_config, image_grid,
                                           make_tokenizer_train_step, psnr, tokenizer_loss)

TINY = dict(ch=8, ch_mult=(1, 2), num_res_blocks=(1, 1), dec_ch_mult=(1, 2),
            dec_num_res_blocks=(1, 1), bits=6, num_groups=4)


def test_psnr_and_grid_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 5, 7, 3)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), -1, 1).astype(np.float32)
    mse = ((x.astype(np.float64) - y) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(float(psnr(jnp.asarray(x), jnp.asarray(y))),
                               np.mean(10 * np.log10(4 / mse)), rtol=1e-5)
    g = image_grid([x, y], pad=1)
    assert g.shape == (2 * 6 + 1, 3 * 8 + 1, 3) and g.dtype == np.uint8
    np.testing.assert_array_equal(g[1:6, 1 + 8:1 + 8 + 7], np.round((x[1] + 1) * 127.5))
    np.testing.assert_array_equal(g[7:12, 1:8], np.round((y[0] + 1) * 127.5))
    assert (g[0] == 255).all()


def test_loss_config_errors():
    base = dict(recon="l1", recon_weight=1.0, entropy_weight=0.1, commit_weight=0.1, beta=0.25,
                perceptual_weight=0.0)
    check_loss_config(base)
    with pytest.raises(ValueError, match="recon"):
        check_loss_config(dict(base, recon="l3"))
    with pytest.raises(ValueError, match="perceptual"):
        check_loss_config(dict(base, perceptual_weight=1.0))


def test_shapes_data_is_seeded():
    a = ShapesWorldImages(4, 32, seed=3)
    b1, b2 = next(a)["images"], next(a)["images"]
    c = ShapesWorldImages(4, 32, seed=3)
    c.set_state({"step": 1})
    np.testing.assert_array_equal(next(c)["images"], b2)
    assert b1.shape == (4, 32, 32, 3) and b1.min() >= -1 and b1.max() <= 1
    assert not np.array_equal(b1, b2) and a.get_state() == {"step": 2}
    imgs, scenes = heldout_set(3, 32)
    assert imgs.shape == (3, 32, 32, 3) and len(scenes) == 3


def test_train_step_loss_and_progress():
    cfg = MagvitConfig(**TINY)
    model = MAGVITv2(cfg)
    x = jnp.asarray(heldout_set(4, 16, seed=1)[0])
    lc = dict(recon="l2", recon_weight=1.0, entropy_weight=0.3, commit_weight=0.2, beta=0.25,
              perceptual_weight=0.0)
    from mmada_jax.training.optimizer import make_optimizer
    from mmada_jax.training.step import TrainState
    o = types.SimpleNamespace(name="adamw", lr=3e-3, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.0,
                              clip_norm=1.0, schedule="constant", warmup_steps=0,
                              min_lr_scale=1.0, decay_steps=0)
    tx, sched = make_optimizer(o, 10)
    params = init_params(cfg, 0)

    # The loss pieces against direct computation from the forward pass.
    out, (total, m) = jax.jit(lambda p, x: (model.apply({"params": p}, x),
                                            tokenizer_loss(model, lc, p, x)))(params, x)
    rec = float(np.mean((np.asarray(out["recon"], np.float64) - np.asarray(x)) ** 2))
    q = lfq.lfq_losses(out["z"], 0.25, 0.3, 0.2)
    np.testing.assert_allclose(float(m["recon_loss"]), rec, rtol=1e-5)
    np.testing.assert_allclose(float(total),
                               rec + float(q["entropy_loss"]) + float(q["commit_loss"]), rtol=1e-5)
    used = len(np.unique(np.asarray(out["codes"])))
    np.testing.assert_allclose(float(m["code_usage"]), used / 64)

    z = jnp.zeros((), jnp.int32)
    state = TrainState(step=z, params=params, opt_state=tx.init(params),
                       rng=jax.random.key_data(jax.random.key(0)), nonfinite_in_row=z,
                       nonfinite_total=z)
    step = jax.jit(make_tokenizer_train_step(model, tx, lc, sched))
    losses = []
    for _ in range(8):
        state, metrics = step(state, {"images": x})
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 8 and int(metrics["update_skipped"]) == 0
    assert losses[-1] < 0.8 * losses[0], losses
    # A non-finite batch leaves the state unchanged.
    before = jax.tree.map(np.asarray, state.params)
    state, metrics = step(state, {"images": x.at[0, 0, 0, 0].set(jnp.nan)})
    assert int(metrics["update_skipped"]) == 1 and int(state.nonfinite_in_row) == 1
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, state.params))


def test_train_tokenizer_end_to_end(tmp_path):
    """Tiny run on 2 CPU devices (batch sharded): stop after 1 step, resume, finish, eval,
    PNG grid."""
    from mmada_jax.train_tokenizer import base_tokenizer_config, train_tokenizer, validate
    c = base_tokenizer_config()
    c.magvit.update(dict(TINY, ch_mult=[1, 2], num_res_blocks=[1, 1], dec_ch_mult=[1, 2],
                         dec_num_res_blocks=[1, 1]))
    c.data.image_size = 16
    c.batch_size = 4
    c.train.update(dict(steps=2, log_every=1, ckpt_every=1, eval_images=4, grid_images=3,
                        async_ckpt=False, tensorboard=False))
    with pytest.raises(ValueError, match="batch_size"):
        bad = base_tokenizer_config()
        bad.batch_size = 6
        validate(bad, 4)
    wd = str(tmp_path / "run")
    devices = jax.devices()[:2]
    first = train_tokenizer(c, wd, stop_after=1, devices=devices)
    assert first["stopped_by"] == "stop_after" and int(first["state"].step) == 1
    second = train_tokenizer(c, wd, devices=devices)
    assert int(second["state"].step) == 2
    assert [h["step"] for h in second["history"] if "loss" in h] == [2]
    ev = second["eval"]
    assert 0 <= ev["parse_agreement"] <= 1 and np.isfinite(ev["psnr"])
    png = os.path.join(wd, "recon", "step_000002.png")
    img = np.asarray(Image.open(png))
    assert img.shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    lines = [json.loads(s) for s in open(os.path.join(wd, "metrics.jsonl"))]
    assert [d["step"] for d in lines if "loss" in d] == [1, 2]
    assert any("eval/psnr" in d for d in lines)
