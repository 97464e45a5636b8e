"""End-to-end smoke test of the main job at a minute-sized config: ShapesWorld build, tokenizers,
pretrain -> eval -> mixed-CoT SFT (with reason-then-draw rows) -> eval -> UniGRPO -> eval,
and the markdown report."""

import json
import os

import pytest

from mmada_jax import demo


def test_demo_all_stages_ci(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "sw_common", os.path.join(demo.EXPERIMENTS, "sw_common.py"))
    sw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sw)

    dc = demo.demo_config("ci")
    dc.image_tokenizer.kind = "pool"  # MAGVIT training is covered by the tokenizer tests
    dc.text_tokenizer.corpus = 150
    dc.text_tokenizer.base_vocab_size = 400
    dc.calibrate_steps = 2
    for s in demo.STAGES:
        dc.budget[s] = 1.0
    dc.eval = sw.eval_section("ci")
    # fine-tuning keeps a moving average of the parameters: its eval and UniGRPO read it
    demo.add_stage_override(dc, "train.ema_decay=0.9", ("sft",))
    # UniGRPO with its fine-tuning anchor (rl/anchor.py) on the stage's real reasoning chats
    demo.add_stage_override(dc, "rl.anchor_coeff=0.5", ("grpo",))
    workdir = str(tmp_path / "demo")
    path = demo.run_demo(dc, workdir)

    text = open(path).read()
    for s in demo.STAGES:
        rep = json.load(open(os.path.join(workdir, s, "eval", "report.json")))["results"]
        for key in ("reasoning", "vqa", "pope", "t2i", "wise", "wise_r2i"):
            assert key in rep, (s, key)
        assert 0.0 <= rep["t2i"]["overall"] <= 1.0
        assert os.path.exists(os.path.join(workdir, s, "eval", "t2i_samples.png"))
        rows = [json.loads(x) for x in open(os.path.join(workdir, s, "eval", "answers.jsonl"))]
        for task, acc in (("reasoning", "accuracy"), ("vqa", "accuracy"), ("pope", "accuracy")):
            mine = [r for r in rows if r["task"] == task]
            assert len(mine) == rep[task]["n"] and all(r["response"] is not None for r in mine)
            assert abs(sum(r["correct"] for r in mine) / len(mine) - rep[task][acc]) < 1e-9
        reasoning = [r for r in rows if r["task"] == "reasoning"]
        assert abs(sum(r["sound"] for r in reasoning) / len(reasoning)
                   - rep["reasoning"]["sound_rate"]) < 1e-9
    hist = [json.loads(x) for x in open(os.path.join(workdir, "grpo", "metrics.jsonl"))]
    assert hist and all(k in hist[0] for k in ("reasoning/reward_mean", "vqa/reward_std",
                                               "t2i/pass_rate", "kl", "clip_fraction",
                                               "vqa/response_len"))
    assert all(h["anchor_loss"] > 0 for h in hist)
    assert "## Metrics per stage" in text and "grpo_rewards.png" in text
    meta = {s: json.load(open(os.path.join(workdir, s, "eval", "report.json")))["meta"]
            for s in demo.STAGES}
    assert [meta[s]["weights"] for s in demo.STAGES] == ["params", "ema", "params"]
    assert meta["sft"]["step"] == json.load(open(os.path.join(workdir, "sft", "DONE")))["steps"]
    assert f"sft step {meta['sft']['step']}, moving average of the parameters" in text
    assert "**grpo vs sft**, item by item" in text and "reasoning sound steps" in text
    assert os.path.exists(os.path.join(workdir, "grpo_rewards.png"))
    held = json.load(open(os.path.join(workdir, "grpo", "heldout_rewards.json")))
    for t in ("reasoning", "vqa", "t2i"):  # ci: one chunk of one prompt x 2 samples per task
        assert held["before"][t]["prompts"] == 1 and held["before"][t]["samples"] == 2
        c = held["compare"][t]
        assert c["before"] == held["before"][t]["reward_mean"] and 0 <= c["p"] <= 1
    assert "UniGRPO's objective on held-out prompts" in text

    # benchmarks/grpo_same_prompts.py rebuilds the stage from its saved config and replays its
    # rollouts with the SFT policy: at step 1 the policies are the same, so the rewards must be
    import importlib.util as ilu
    probe_spec = ilu.spec_from_file_location("grpo_same_prompts", os.path.join(
        os.path.dirname(demo.EXPERIMENTS), "benchmarks", "grpo_same_prompts.py"))
    probe = ilu.module_from_spec(probe_spec)
    probe_spec.loader.exec_module(probe)
    same = probe.main(["--run", workdir, "--windows", "1-1", "--tasks", "reasoning,vqa",
                       "--out", str(tmp_path / "same.json")])
    for t in ("reasoning", "vqa"):
        row = same["rows"][0][t]
        assert row["sft_reward"] == pytest.approx(row["stage_reward"], abs=1e-6), t
        assert row["sft_pass"] == pytest.approx(row["stage_pass"], abs=1e-6), t
    with pytest.raises(ValueError, match="not in"):
        probe.main(["--run", workdir, "--windows", "1-99"])

    # the code cache is addressed by record index (TFDS stores records shuffled): every cached
    # grid must be the pooled-color code of the image whose record carries that index
    import glob
    import numpy as np
    from mmada_jax.data import codes as codes_lib
    from mmada_jax.data import images as image_lib
    from mmada_jax.data.shapesworld import builder
    cache_path = glob.glob(os.path.join(workdir, "assets", "codes_train_*.npy"))[0][:-4]
    cache = codes_lib.CodeCache(cache_path)
    cfg = demo._stage_config("pretrain", "ci", workdir, dc)
    sw_cfg = cfg.data.shapesworld
    src = builder.ShapesWorldSource(cfg.data.data_dir, "train", image_size=int(cfg.data.image_size),
                                    num_train=int(sw_cfg.num_train), num_test=int(sw_cfg.num_test),
                                    seed=0, knowledge_fraction=float(sw_cfg.knowledge_fraction),
                                    max_objects=int(sw_cfg.max_objects))
    assert int(sw_cfg.max_objects) == 2 and cache_path.endswith("_m2")
    assert max(len(json.loads(src[i]["scene"])) for i in range(len(src))) <= 2
    grid = int(round(int(cfg.data.num_image_tokens) ** 0.5))
    for pos in range(len(src)):
        rec = src[pos]
        img = image_lib.normalize(image_lib.decode(rec["image"]))
        want = codes_lib.pool_quantize_codes(img[None], grid, int(cfg.tokens.codebook_size))[0]
        np.testing.assert_array_equal(cache[int(rec["index"])], want)

    # a tokenizer newer than the cache (retrained in place) rebuilds it; an older one reuses it
    import time

    class Retrained:
        source_mtime = time.time() + 60.0
        name = "retrained"

        def encode(self, images):
            return np.zeros((len(images), grid, grid), np.int32) + 7

    cfgs = {s: demo._stage_config(s, "ci", workdir, dc) for s in demo.STAGES}
    demo.build_code_caches(cfgs, Retrained(), os.path.join(workdir, "assets"))
    assert (np.load(cache_path + ".npy") == 7).all()
    Retrained.source_mtime = 0.0
    Retrained.encode = lambda self, images: np.zeros((len(images), grid, grid), np.int32)
    demo.build_code_caches(cfgs, Retrained(), os.path.join(workdir, "assets"))
    assert (np.load(cache_path + ".npy") == 7).all()
    assert all(c.data.components.sw_vqa.codes_cache == cache_path for c in cfgs.values())


def test_rerun_with_another_config_is_refused(tmp_path):
    """Finished phases are skipped on a rerun, so a changed configuration is a named error."""
    from mmada_jax import demo
    dc = demo.demo_config("ci")
    cfgs = {s: demo._stage_config(s, "ci", str(tmp_path), dc) for s in demo.STAGES}
    fp = demo.config_fingerprint(dc, cfgs)
    demo.check_workdir_config(str(tmp_path), fp)
    demo.check_workdir_config(str(tmp_path), demo.config_fingerprint(dc, cfgs))  # same: fine
    moved = {s: demo._stage_config(s, "ci", str(tmp_path / "copy"), dc) for s in demo.STAGES}
    assert demo.config_fingerprint(dc, moved) == fp  # a copied workdir is the same run
    cfgs["sft"].data.image_size = 32
    with pytest.raises(ValueError, match=r"sft\.data changed.*--fresh"):
        demo.check_workdir_config(str(tmp_path), demo.config_fingerprint(dc, cfgs))
