"""Each objective against a NumPy float64 reference of its formula (spec section 3)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmada_jax.objectives import get_objective, token_scores
from mmada_jax.objectives.image import image_mask
from mmada_jax.objectives.schedules import get_schedule
from mmada_jax.objectives.text import text_mask

TRAIN = ml_collections.ConfigDict(dict(text_eps=1e-3))


def _np_ce(logits, targets):
    l64 = logits.astype(np.float64)
    m = l64.max(-1, keepdims=True)
    lse = np.log(np.exp(l64 - m).sum(-1)) + m[..., 0]
    return lse - np.take_along_axis(l64, targets[..., None], -1)[..., 0]


def _rand(b, l, v, rng):
    logits = rng.normal(0, 2, (b, l, v)).astype(np.float32)
    tokens = rng.integers(0, v, (b, l)).astype(np.int32)
    return logits, tokens


def test_text_lm_loss_matches_numpy():
    rng = np.random.default_rng()
    b, l, v = 3, 17, 29
    logits, tokens = _rand(b, l, v, rng)
    masked = rng.random((b, l)) < 0.4
    p = rng.uniform(1e-3, 1, b).astype(np.float32)
    rows = dict(tokens=tokens, target_mask=np.ones((b, l), bool))
    obj = get_objective("text_lm", ml_collections.ConfigDict(), TRAIN)
    loss, m = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), rows, dict(masked=jnp.asarray(masked), p=jnp.asarray(p)))
    ce = _np_ce(logits, tokens)
    ref = (ce * masked / p[:, None].astype(np.float64)).sum() / (b * l)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)
    acc = ((logits.argmax(-1) == tokens) & masked).sum() / masked.sum()
    np.testing.assert_allclose(float(m["accuracy"]), acc, rtol=1e-6)


def test_text_answer_loss_normalizes_by_answer_length():
    rng = np.random.default_rng()
    b, l, v = 4, 19, 23
    logits, tokens = _rand(b, l, v, rng)
    target = np.zeros((b, l), bool)
    for i, start in enumerate([3, 7, 11, 18]):  # prompt lengths; answers incl. eos pads
        target[i, start:] = True
    masked = (rng.random((b, l)) < 0.5) & target
    p = rng.uniform(1e-3, 1, b).astype(np.float32)
    rows = dict(tokens=tokens, target_mask=target)
    obj = get_objective("text_answer", ml_collections.ConfigDict(), TRAIN)
    loss, _ = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), rows, dict(masked=jnp.asarray(masked), p=jnp.asarray(p)))
    ce = _np_ce(logits, tokens)
    per_row = (ce * masked / p[:, None].astype(np.float64)).sum(1) / target.sum(1)
    np.testing.assert_allclose(float(loss), per_row.sum() / b, rtol=1e-5)


def test_text_answer_full_masks_every_target_and_averages_its_ce_per_row():
    """Every target (and nothing else) is masked whatever the rng; the loss is the float64 mean
    over rows of each row's mean CE over its targets, a row without targets counting 0."""
    rng = np.random.default_rng()
    b, l, v = 5, 21, 31
    logits, tokens = _rand(b, l, v, rng)
    target = rng.random((b, l)) < 0.3
    target[2] = False  # a row with no targets
    rows = dict(tokens=jnp.asarray(tokens), target_mask=jnp.asarray(target))
    obj = get_objective("text_answer_full", ml_collections.ConfigDict(), TRAIN)
    for seed in range(3):
        noise = obj.corrupt(jax.random.PRNGKey(seed), rows, 99)
        assert (np.asarray(noise["masked"]) == target).all()
        assert (np.asarray(noise["inputs"]) == np.where(target, 99, tokens)).all()
    loss, m = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), rows, noise)
    ce = _np_ce(logits, tokens)
    per_row = [(ce[i][target[i]].mean() if target[i].any() else 0.0) for i in range(b)]
    np.testing.assert_allclose(float(loss), np.mean(per_row), rtol=1e-5)
    assert int(m["masked_tokens"]) == target.sum()


def test_text_corruption_never_touches_prompt():
    b, l = 64, 40
    target = np.zeros((b, l), bool)
    target[:, 15:] = True
    rows = dict(tokens=jnp.full((b, l), 5, jnp.int32), target_mask=jnp.asarray(target))
    obj = get_objective("text_answer", ml_collections.ConfigDict(), TRAIN)
    noise = obj.corrupt(jax.random.key(3), rows, mask_id=99)
    masked = np.asarray(noise["masked"])
    assert not masked[:, :15].any()
    np.testing.assert_array_equal(np.asarray(noise["inputs"]) == 99, masked)
    # p = (1 - eps) t + eps with t ~ U(0, 1): per-row masked fraction tracks p
    frac = masked[:, 15:].mean(1)
    assert np.corrcoef(frac, np.asarray(noise["p"]))[0, 1] > 0.8
    assert np.all((np.asarray(noise["p"]) >= 1e-3) & (np.asarray(noise["p"]) <= 1))


def test_text_mask_probability_formula():
    key = jax.random.key(11)
    tm = jnp.ones((5, 7), bool)
    _, p = text_mask(key, tm, 1e-3)
    k_t, _ = jax.random.split(key)
    t = np.asarray(jax.random.uniform(k_t, (5,), jnp.float32), np.float64)
    np.testing.assert_allclose(np.asarray(p), (1 - 1e-3) * t + 1e-3, rtol=1e-6)


def test_image_mask_counts_follow_cosine_schedule():
    b, l = 16, 30
    target = np.zeros((b, l), bool)
    target[:, 5:25] = True  # 20 image positions
    target[3] = False  # a row without image tokens masks nothing
    key = jax.random.key(7)
    masked, n = image_mask(key, jnp.asarray(target), get_schedule("cosine"))
    k_t, _ = jax.random.split(key)
    t = np.asarray(jax.random.uniform(k_t, (b,), jnp.float32), np.float64)
    expect = np.clip(np.round(20 * np.cos(np.pi * t / 2)), 1, 20)
    expect[3] = 0
    masked = np.asarray(masked)
    np.testing.assert_array_equal(masked.sum(1), expect)
    assert not (masked & ~target).any()


@pytest.mark.parametrize("name", ["full", "half_full"])
def test_image_mask_counts_follow_the_full_mask_schedules(name):
    """'full' masks every image token; 'half_full' masks every one for t < 1/2 and
    round(V cos(pi (t - 1/2))) (at least 1) otherwise (float64 reference)."""
    b, l = 64, 27
    target = np.zeros((b, l), bool)
    target[:, 4:21] = True  # 17 image positions
    key = jax.random.key(11)
    masked, _ = image_mask(key, jnp.asarray(target), get_schedule(name))
    t = np.asarray(jax.random.uniform(jax.random.split(key)[0], (b,), jnp.float32), np.float64)
    ratio = np.ones(b) if name == "full" else np.where(t < 0.5, 1.0, np.cos(np.pi * (t - 0.5)))
    expect = np.clip(np.round(17 * ratio), 1, 17)
    masked = np.asarray(masked)
    np.testing.assert_array_equal(masked.sum(1), expect)
    assert not (masked & ~target).any()
    if name == "half_full":
        assert 0.3 < (expect == 17).mean() < 0.7 and (expect < 17).any()


def test_image_loss_is_plain_mean_over_masked():
    rng = np.random.default_rng()
    b, l, v = 3, 21, 31
    logits, tokens = _rand(b, l, v, rng)
    masked = rng.random((b, l)) < 0.3
    masked[0, 0] = True
    obj = get_objective("image_mask", ml_collections.ConfigDict(dict(schedule="cosine")), TRAIN)
    loss, _ = obj.loss(token_scores(jnp.asarray(logits), jnp.asarray(tokens)), dict(tokens=tokens), dict(masked=jnp.asarray(masked)))
    ref = _np_ce(logits, tokens)[masked].mean()
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)


def test_training_schedule_is_usable_by_the_image_sampler():
    """A schedule registered once (for training) also drives the sampler's mask-length table."""
    from mmada_jax.objectives import register_schedule
    from mmada_jax.sampling.schedules import mask_len_table

    @register_schedule("test_cubic")
    def cubic(t):
        return 1.0 - t ** 3

    steps, n = 7, 50
    r = (np.arange(steps, dtype=np.float32) + 1) / steps
    np.testing.assert_array_equal(mask_len_table("test_cubic", steps, n),
                                  np.floor(np.float32(n) * (1 - r ** 3)).astype(np.int32))
    import pytest
    with pytest.raises(ValueError, match="mask schedule 'nope' unknown"):
        mask_len_table("nope", steps, n)


# ---------------------------------------------------------------------------- text_answer_suffix
def _packed_rows(rng, b, l):
    """Random rows of 1-3 contiguous segments, each a prompt then an answer (target) span."""
    seg = np.zeros((b, l), np.int32)
    target = np.zeros((b, l), bool)
    for i in range(b):
        cuts = np.sort(rng.choice(np.arange(1, l), min(int(rng.integers(0, 3)), l - 1),
                                  replace=False))
        bounds = [0, *cuts.tolist(), l]
        for s, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            seg[i, lo:hi] = s + 1
            start = rng.integers(lo, hi + 1)  # an empty answer is possible
            target[i, start:hi] = True
    return seg, target


def _np_suffix_mask(target, seg, p, u, cut_table, use_table):
    out = np.zeros_like(target)
    b, l = target.shape
    for i in range(b):
        for s in np.unique(seg[i]):
            pos = np.where((seg[i] == s) & target[i])[0]
            sid = min(max(int(s), 0), l - 1)
            for r, j in enumerate(pos):
                frac = r / len(pos)
                visible_prefix = use_table[i, sid] and frac < cut_table[i, sid]
                out[i, j] = u[i, j] < p[i] and not visible_prefix
    return out


def test_suffix_mask_matches_numpy_on_packed_rows():
    from mmada_jax.objectives.text_suffix import answer_fraction, suffix_mask_from_draws
    rng = np.random.default_rng()
    for b, l in ((3, 17), (5, 31), (1, 2)):
        seg, target = _packed_rows(rng, b, l)
        p = rng.uniform(1e-3, 1, b).astype(np.float32)
        u, cut = (rng.random((b, l)).astype(np.float32) for _ in range(2))
        use = rng.random((b, l)) < 0.6
        got = suffix_mask_from_draws(jnp.asarray(target), jnp.asarray(seg), jnp.asarray(p),
                                     jnp.asarray(u), jnp.asarray(cut), jnp.asarray(use))
        np.testing.assert_array_equal(np.asarray(got), _np_suffix_mask(target, seg, p, u, cut, use))
        frac = np.asarray(answer_fraction(jnp.asarray(target), jnp.asarray(seg)))
        for i in range(b):
            for s in np.unique(seg[i]):
                pos = np.where((seg[i] == s) & target[i])[0]
                np.testing.assert_allclose(frac[i, pos], np.arange(len(pos)) / max(len(pos), 1),
                                           rtol=1e-6)
    # no segment ids: one segment per row
    seg, target = _packed_rows(rng, 4, 23)
    one = np.zeros_like(seg)  # None = segment 0 everywhere
    args = [jnp.asarray(x) for x in (rng.uniform(0, 1, 4).astype(np.float32),
                                     rng.random((4, 23)), rng.random((4, 23)),
                                     rng.random((4, 23)) < 0.5)]
    np.testing.assert_array_equal(
        np.asarray(suffix_mask_from_draws(jnp.asarray(target), None, *args)),
        np.asarray(suffix_mask_from_draws(jnp.asarray(target), jnp.asarray(one), *args)))


def test_suffix_objective_keeps_a_visible_prefix_and_text_answer_loss():
    b, l = 256, 40
    target = np.zeros((b, l), bool)
    target[:, 10:] = True
    rows = dict(tokens=jnp.full((b, l), 5, jnp.int32), target_mask=jnp.asarray(target))
    always = get_objective("text_answer_suffix", ml_collections.ConfigDict(dict(suffix_prob=1.0)),
                           TRAIN)
    noise = always.corrupt(jax.random.key(0), rows, mask_id=99)
    masked, p = np.asarray(noise["masked"]), np.asarray(noise["p"])
    assert not masked[:, :10].any()
    np.testing.assert_array_equal(np.asarray(noise["inputs"]) == 99, masked)
    # a visible prefix: in expectation only the part after a uniform cut is masked (p / 2)
    np.testing.assert_allclose(masked[:, 10:].mean(), (p / 2).mean(), atol=0.03)
    first = np.where(masked.any(1), masked.argmax(1), l)
    assert (first > 10 + 15).mean() > 0.3  # many rows keep more than half the answer visible
    never = get_objective("text_answer_suffix", ml_collections.ConfigDict(dict(suffix_prob=0.0)),
                          TRAIN)
    plain = never.corrupt(jax.random.key(0), rows, mask_id=99)
    np.testing.assert_allclose(np.asarray(plain["masked"])[:, 10:].mean(),
                               np.asarray(plain["p"]).mean(), atol=0.03)
    # the loss is text_answer's
    rng = np.random.default_rng(1)
    logits, tokens = _rand(4, 12, 9, rng)
    t4 = np.zeros((4, 12), bool)
    t4[:, 5:] = True
    m4 = (rng.random((4, 12)) < 0.5) & t4
    p4 = rng.uniform(0.1, 1, 4).astype(np.float32)
    sc = token_scores(jnp.asarray(logits), jnp.asarray(tokens))
    nz = dict(masked=jnp.asarray(m4), p=jnp.asarray(p4))
    r4 = dict(tokens=tokens, target_mask=t4)
    ref, _ = get_objective("text_answer", ml_collections.ConfigDict(), TRAIN).loss(sc, r4, nz)
    got, _ = always.loss(sc, r4, nz)
    np.testing.assert_allclose(float(got), float(ref), rtol=1e-6)
    import pytest
    with pytest.raises(ValueError, match="suffix_prob"):
        get_objective("text_answer_suffix", ml_collections.ConfigDict(dict(suffix_prob=2.0)), TRAIN)


def test_objectives_register_the_rows_they_score():
    import pytest
    from mmada_jax.data import batching
    from mmada_jax.objectives import objective_rows, register_objective
    assert {n: objective_rows(n) for n in ("image_mask", "text_lm", "text_answer",
                                           "text_answer_suffix", "text_answer_full")} == {
        "image_mask": "t2i", "text_lm": "lm", "text_answer": "mmu", "text_answer_suffix": "mmu",
        "text_answer_full": "mmu"}
    assert batching.row_kind("text_answer_suffix") == "mmu" and batching.row_kind("nope") is None
    with pytest.raises(ValueError, match="rows"):
        register_objective("bad_rows", rows="image")


def test_sw_gpu_suffix_experiment_selects_the_objective_for_sft_only(tmp_path):
    import os
    from mmada_jax import demo
    from mmada_jax.config import load_config_file
    from mmada_jax.data import batching
    dc = load_config_file(os.path.join(demo.EXPERIMENTS, "sw_gpu_suffix.py"))
    cfgs = {s: demo._stage_config(s, dc.variant, str(tmp_path), dc) for s in demo.STAGES}
    assert cfgs["sft"].tasks.mmu.objective == "text_answer_suffix"
    assert cfgs["pretrain"].tasks.mmu.objective == "text_answer"
    assert batching.row_kind(cfgs["sft"].tasks.mmu.objective) == "mmu"


def test_cpu_read_task_default_and_sw_cpu_read(tmp_path):
    """The cpu pre-training and SFT configs hold the 'read' task (salient rows scored by
    text_answer_full) with 4 rows and learning rates of 5e-4; `sw_cpu_read.py:N` sets N rows,
    and N = 0 restores the previous setting (no rows, 2e-3 / 1e-3); no UniGRPO config has it."""
    import os
    from mmada_jax import demo
    from mmada_jax.config import load_config_file
    from mmada_jax.training.step import active_tasks
    path = os.path.join(demo.EXPERIMENTS, "sw_cpu_read.py")
    for dc, n, lrs in ((demo.demo_config("cpu"), 4, (5e-4, 5e-4)),
                       (load_config_file(path), 4, (5e-4, 5e-4)),
                       (load_config_file(path, "2"), 2, (5e-4, 5e-4)),
                       (load_config_file(path, "0"), 0, (2e-3, 1e-3))):
        cfgs = {s: demo._stage_config(s, "cpu", str(tmp_path), dc) for s in demo.STAGES}
        for stage, lr in zip(("pretrain", "sft"), lrs):
            t = cfgs[stage].tasks.read
            assert (t.objective, t.batch_size, t.salient_prob) == ("text_answer_full", n, 1.0)
            assert ("read" in active_tasks(cfgs[stage])) == (n > 0)
            assert {"red", "triangle", "left", "center"} <= set(cfgs[stage].data.salient_words)
            assert cfgs[stage].optim.lr == lr
        assert "read" not in cfgs["grpo"].tasks
    with pytest.raises(ValueError, match="read rows"):
        load_config_file(path, "-1")


def test_gpu_read_rows_off_by_default_and_sw_gpu_read(tmp_path):
    """The gpu fine-tuning config holds the 'read' task with no rows (`GPU_READ_ROWS`);
    `sw_gpu_read.py:N` turns on N rows in SFT alone, never readback rows, with the cell words
    among the masked ones; pre-training and UniGRPO have no read task."""
    import os
    from mmada_jax import demo
    from mmada_jax.config import load_config_file
    from mmada_jax.training.step import active_tasks
    path = os.path.join(demo.EXPERIMENTS, "sw_gpu_read.py")
    for dc, n in ((demo.demo_config("gpu"), 0), (load_config_file(path), 32),
                  (load_config_file(path, "8"), 8)):
        cfgs = {s: demo._stage_config(s, "gpu", str(tmp_path), dc) for s in demo.STAGES}
        t = cfgs["sft"].tasks.read
        assert (t.objective, t.batch_size, t.salient_prob, t.readback_prob) == (
            "text_answer_full", n, 1.0, 0.0)
        assert ("read" in active_tasks(cfgs["sft"])) == (n > 0)
        assert cfgs["sft"].data.readback_prob == 0.25  # the other image rows keep theirs
        assert {"blue", "circle", "top", "middle"} <= set(cfgs["sft"].data.salient_words)
        assert "read" not in cfgs["pretrain"].tasks and "read" not in cfgs["grpo"].tasks
    with pytest.raises(ValueError, match="read rows"):
        load_config_file(path, "-2")


def test_cpu_grpo_rewards_sound_steps_and_cell_claims(tmp_path):
    """The cpu UniGRPO stage rewards sound equations and true cell claims at weight 1 besides
    correctness and format, at lr 3e-5 with the fine-tuning anchor on the reasoning chats and VQA rows; the
    rewards are registered, and the gpu stage keeps both at weight 0 (logged only), anchor off."""
    from mmada_jax import demo
    from mmada_jax.rl.rewards import REWARDS
    cpu = demo._stage_config("grpo", "cpu", str(tmp_path), demo.demo_config("cpu"))
    gpu = demo._stage_config("grpo", "gpu", str(tmp_path), demo.demo_config("gpu"))
    assert dict(cpu.rl.tasks.reasoning.rewards) == dict(correctness=1.0, format=1.0, equations=1.0)
    assert dict(cpu.rl.tasks.vqa.rewards) == dict(correctness=1.0, format=1.0, listing=1.0)
    assert cpu.optim.lr == 3e-5
    assert cpu.rl.anchor_coeff == 1.0 and cpu.rl.anchor_tasks == "lm,mmu"
    assert "lm" in cpu.tasks and "mmu" in cpu.tasks
    assert gpu.rl.anchor_coeff == 0.0
    assert "equations" in REWARDS and "listing" in REWARDS
    assert gpu.rl.tasks.reasoning.rewards.equations == 0.0 and gpu.rl.tasks.vqa.rewards.listing == 0.0


def test_token_scores_against_float64_numpy():
    """ce = logsumexp - target logit (float64 reference) and hit = argmax == target, on random
    logits at awkward sizes (no ties), and the gradient of the mean ce is softmax - onehot."""
    rng = np.random.default_rng()
    b, l, v = 3, 7, 41
    logits = rng.normal(0, 3, (b, l, v)).astype(np.float32)
    tokens = rng.integers(0, v, (b, l))
    tokens[0, :3] = logits[0, :3].argmax(-1)  # some hits for sure
    sc = token_scores(jnp.asarray(logits), jnp.asarray(tokens))
    x = logits.astype(np.float64)
    m = x.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]
    ce = lse - np.take_along_axis(x, tokens[..., None], -1)[..., 0]
    np.testing.assert_allclose(np.asarray(sc["ce"]), ce, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(sc["hit"]), x.argmax(-1) == tokens)
    assert np.asarray(sc["hit"]).sum() >= 3
    g = jax.grad(lambda z: token_scores(z, jnp.asarray(tokens))["ce"].mean())(jnp.asarray(logits))
    p = np.exp(x - lse[..., None])
    ref = (p - np.eye(v)[tokens]) / (b * l)
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-4, atol=1e-7)
