"""Training an LFQ autoencoder (MAGVIT-v2): the loss and a pure train step.

    step = make_tokenizer_train_step(model, tx, loss_cfg, lr_schedule)
    state, metrics = step(state, {"images": x})     # x float32 [B, H, W, 3] in [-1, 1]

The state is the project's `TrainState` (mmada_jax.training.step). Loss:
    recon_weight * (L1 or L2 reconstruction)
  + entropy_weight * (per-sample entropy - codebook entropy)      (LFQ, over the global batch)
  + commit_weight * commitment                                    (LFQ, released form)
A perceptual term needs a pretrained feature network, none of which is bundled: a non-zero
`perceptual_weight` is refused with an error. Non-finite steps leave the state unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmada_jax.tokenizers import lfq

LOSS_DEFAULTS = dict(recon="l1", recon_weight=1.0, entropy_weight=0.1, commit_weight=0.1,
                     beta=0.25, perceptual_weight=0.0)


def check_loss_config(lc) -> None:
    """Raise ValueError naming the bad `config.loss` field."""
    if lc["recon"] not in ("l1", "l2"):
        raise ValueError(f"config.loss.recon={lc['recon']!r}: use 'l1' or 'l2'")
    if lc["perceptual_weight"]:
        raise ValueError("config.loss.perceptual_weight must be 0: no pretrained perceptual "
                         "network (LPIPS/VGG) is bundled with mmada-jax")
    for k in ("recon_weight", "entropy_weight", "commit_weight"):
        if lc[k] < 0:
            raise ValueError(f"config.loss.{k}={lc[k]} must be >= 0")


def psnr(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean over images of PSNR in dB for images in [-1, 1] (peak-to-peak 2). [B, H, W, C]."""
    mse = jnp.mean((x.astype(jnp.float32) - y.astype(jnp.float32)) ** 2, axis=(1, 2, 3))
    return jnp.mean(10.0 * jnp.log10(4.0 / jnp.maximum(mse, 1e-12)))


def tokenizer_loss(model, lc, params, images):
    """(total loss, metrics) of one batch. images float32 [B, H, W, 3] in [-1, 1]."""
    out = model.apply({"params": params}, images)
    diff = out["recon"] - images
    rec = jnp.mean(jnp.abs(diff)) if lc["recon"] == "l1" else jnp.mean(diff ** 2)
    q = lfq.lfq_losses(out["z"], lc["beta"], lc["entropy_weight"], lc["commit_weight"])
    total = lc["recon_weight"] * rec + q["entropy_loss"] + q["commit_loss"]
    usage = jnp.bincount(out["codes"].reshape(-1), length=model.cfg.codebook_size) > 0
    metrics = dict(loss=total, recon_loss=rec, entropy_loss=q["entropy_loss"],
                   commit_loss=q["commit_loss"], per_sample_entropy=q["per_sample_entropy"],
                   codebook_entropy=q["codebook_entropy"],
                   psnr=psnr(jnp.clip(out["recon"], -1, 1), images),
                   code_usage=jnp.mean(usage.astype(jnp.float32)))
    return total, metrics


def make_tokenizer_train_step(model, tx, loss_cfg, lr_schedule=None):
    """Pure `tokenizer_train_step(state, batch) -> (state, metrics)`; batch = {'images': ...}."""
    lc = {**LOSS_DEFAULTS, **dict(loss_cfg)}
    check_loss_config(lc)
    grad_fn = jax.value_and_grad(lambda p, x: tokenizer_loss(model, lc, p, x), has_aux=True)

    def tokenizer_train_step(state, batch):
        (_, metrics), grads = grad_fn(state.params, batch["images"])
        gnorm = optax.tree.norm(grads)
        finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(gnorm)

        def apply(_):
            updates, new_opt = tx.update(grads, state.opt_state, state.params)
            return optax.apply_updates(state.params, updates), new_opt

        new_params, new_opt = jax.lax.cond(finite, apply,
                                           lambda _: (state.params, state.opt_state), None)
        new_state = state.replace(
            step=state.step + 1, params=new_params, opt_state=new_opt,
            nonfinite_in_row=jnp.where(finite, 0, state.nonfinite_in_row + 1),
            nonfinite_total=state.nonfinite_total + (~finite).astype(jnp.int32))
        metrics = dict(metrics, grad_norm=gnorm, update_skipped=(~finite).astype(jnp.int32),
                       nonfinite_in_row=new_state.nonfinite_in_row)
        if lr_schedule is not None:
            metrics["lr"] = lr_schedule(state.step)
        return new_state, metrics

    return tokenizer_train_step


def image_grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """uint8 [R*(H+pad)+pad, N*(W+pad)+pad, 3] grid; each row float [N, H, W, 3] in [-1, 1]."""
    r = len(rows)
    n, h, w, _ = rows[0].shape
    grid = np.full((r * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        if row.shape != rows[0].shape:
            raise ValueError(f"image_grid: row {i} has shape {row.shape}, row 0 {rows[0].shape}")
        img = np.round((np.clip(np.asarray(row, np.float32), -1, 1) + 1) * 127.5).astype(np.uint8)
        for j in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y:y + h, x:x + w] = img[j]
    return grid
