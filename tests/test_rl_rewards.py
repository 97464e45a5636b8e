"""Rewards on hand-written cases; the learned-reward interface against a NumPy cosine."""

import jax
import numpy as np
import pytest

from mmada_jax.rl import rewards


def _score(name, completions, **fields):
    return rewards.build_reward(name)(["q"] * len(completions), completions, **fields).tolist()


def test_correctness_numbers_and_words():
    comps = [
        "<think>6*12</think> The answer is 72.",      # right, well formatted
        "72",                                          # right answer, wrong format
        "<think>hm</think> 73",                        # right format, wrong answer
        "I think it's 1,000 dollars",                  # formatting: comma
        "<think>x</think> $5",                         # currency
        "<think>x</think> \\boxed{5.0}",               # boxed float
        "<think>x</think> Yes.",                       # yes/no word
        "<think>the answer is 3</think> no",           # answer after </think> wins
        "",                                            # empty
    ]
    refs = ["72", "#### 72", "72", "1000", "5", "5", "yes", "yes", "3"]
    assert _score("correctness", comps, answers=refs) == [2.0, 2.0, 0, 2.0, 2.0, 2.0, 2.0, 0, 0]
    with pytest.raises(ValueError, match="answers"):
        _score("correctness", comps, answers=refs[:2])


def test_format_reward_cases():
    cases = {
        "<think>reasoning</think> 42": 0.5,
        "  \n<think>\nstep 1\nstep 2\n</think>\nThe answer is 42": 0.5,
        "The answer is 42": 0.0,                                   # missing think tags
        "<think>a</think> x <think>b</think> 42": 0.0,             # two think blocks
        "<think>reasoning</think>   \n ": 0.0,                     # empty answer
        "<think>reasoning 42": 0.0,                                # unclosed
        "</think> 42 <think>": 0.0,                                # wrong order
        "preamble <think>r</think> 42": 0.0,                       # block not first
    }
    got = _score("format", list(cases))
    assert got == list(cases.values())


def test_combined_reward_weights_and_parts():
    comb = rewards.CombinedReward.from_weights({"correctness": 1.0, "format": 1.0})
    total, parts = comb(["q"] * 3, ["<think>r</think> 7", "7", "<think>r</think> 8"],
                        answers=["7", "7", "7"])
    np.testing.assert_array_equal(total, [2.5, 2.0, 0.5])
    np.testing.assert_array_equal(parts["format"], [0.5, 0, 0.5])
    half = rewards.CombinedReward.from_weights([("format", 0.1)])
    np.testing.assert_allclose(half(["q"], ["<think>r</think> 7"])[0], [0.05])
    with pytest.raises(KeyError, match="registered"):
        rewards.CombinedReward.from_weights({"nope": 1.0})


def test_scene_judge_reward_pluggable():
    def judge(image, md):  # fraction of required colors present in a fake "image" (a set)
        return len(image & set(md["colors"])) / len(md["colors"])

    r = rewards.build_reward("scene_judge", judge=judge, scale=2.0)
    out = r(["p1", "p2"], [{"red"}, {"red", "blue"}], metadata=[{"colors": ["red", "blue"]}] * 2)
    np.testing.assert_allclose(out, [1.0, 2.0])
    bad = rewards.SceneJudgeReward(judge=lambda im, md: 1.5)
    with pytest.raises(ValueError, match="sample 0"):
        bad(["p"], [None], metadata=[{}])


def test_learned_reward_tiny_dual_encoder():
    module = rewards.TinyDualEncoder(embed_dim=8, width=6)
    pre = rewards.byte_preprocess(max_len=12)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 10, 9, 3)).astype(np.uint8)
    prompts = ["a red square", "two blue circles left of a green triangle", ""]
    params = jax.jit(module.init)(jax.random.key(0), *pre(images[:1], prompts[:1]))["params"]
    lr = rewards.LearnedReward(module, params, pre, scale=0.1)
    got = lr.score(images, prompts)
    # Independent reference: NumPy cosine of the module's own embeddings.
    imgs, tok, mask = pre(images, prompts)
    enc = jax.jit(lambda p, im, t, m: (module.apply({"params": p}, im, method=module.encode_image),
                                       module.apply({"params": p}, t, m, method=module.encode_text)))
    a, b = (np.asarray(x, np.float64) for x in enc(params, imgs, tok, mask))
    # (an empty prompt embeds to zero; the module clamps the norm, giving a cosine of 0)
    na, nb = (np.maximum(np.linalg.norm(x, axis=-1), 1e-6) for x in (a, b))
    cos = (a * b).sum(-1) / na / nb
    assert abs(got[1]) > 1e-3
    np.testing.assert_allclose(got, 0.1 * cos, rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(got) <= 0.1 + 1e-6)
    # Uniform reward interface and batch-order consistency.
    perm = [2, 0, 1]
    np.testing.assert_allclose(lr([prompts[i] for i in perm], images[perm]), got[perm], rtol=1e-5)
    assert rewards.REWARDS.get("learned") is rewards.LearnedReward


def test_equations_reward_cases():
    """'equations': true equations on the prompt's numbers (or earlier results) that end at the
    final answer; a lucky guess behind wrong steps earns nothing."""
    p = "Jade has 4 cards. Then Jade finds 3 more. Then the number becomes 2 times as many."
    cases = {
        "<think> 4 + 3 = 7. 7 * 2 = 14. </think> 14": 1.0,       # sound, chained
        "<think> 4 + 3 = 7. 7 x 2 = 14. </think> The answer is 14": 1.0,
        "<think> 4 + 3 = 7. </think> 7": 1.0,                    # sound partial work, consistent
        "<think> 4 + 3 = 9. 9 * 2 = 18. </think> 18": 0.0,       # false equation
        "<think> 9 - 2 = 9. </think> 14": 0.0,                   # lucky guess behind wrong steps
        "<think> 4 + 3 = 7. 7 * 2 = 14. </think> 15": 0.0,       # answer is not the last result
        "<think> 4 + 5 = 9. </think> 9": 0.0,                    # 5 is not in the problem
        "<think> 4 + 3 = 7. 8 * 2 = 16. </think> 16": 0.0,       # 8: neither given nor derived
        "4 + 3 = 7. 7 * 2 = 14. The answer is 14": 0.0,          # missing think tags
        "<think> add them up </think> 14": 0.0,                  # no equation
    }
    r = rewards.build_reward("equations")
    got = r([p] * len(cases), list(cases)).tolist()
    assert got == list(cases.values())
    two = rewards.build_reward("equations", value=2.0)
    assert two([p], ["<think> 4 + 3 = 7. </think> 7"])[0] == 2.0
    with pytest.raises(ValueError, match="prompts"):
        r([p], list(cases))


def test_listing_reward_cases():
    """'listing': the share of the think block's cell claims that the scene makes true."""
    from mmada_jax.data.shapesworld import scenes as sc
    from mmada_jax.rl import rewards_listing as rl_
    scene = sc.Scene((sc.Obj("triangle", "blue", "small", 0, 2),
                      sc.Obj("circle", "red", "large", 1, 1))).to_json()
    r = rewards.build_reward("listing", value=2.0)
    cases = {
        # every claim true: inventory, color listing, the "is in" form, a bare "shape"
        "<think> I see a small blue triangle in the top right and a large red circle in the "
        "center. The small blue triangle is in the top right. </think> top right": 2.0,
        "<think> The colors: blue in the top right and red in the center. </think> red": 2.0,
        "<think> The shape in the center is red. </think> red": 2.0,
        "<think> The shapes: a circle in the center. Counting the circles: there is 1. "
        "</think> 1": 2.0,
        # one of two wrong (blue is top right, not top left): half
        "<think> The colors: blue in the top left and red in the center. </think> blue": 1.0,
        # a wrong shape in the right cell, a plural shape word
        "<think> The triangles: a triangle in the center. </think> 1": 0.0,
        # a one-color listing ('color_first'): its heading's color is part of every claim
        "<think> The red shapes: a large circle in the center. The large red circle is in the "
        "center. </think> center": 2.0,
        # (the center's circle is red: one claim of three holds)
        "<think> The blue shapes: a large circle in the center and a small triangle in the top "
        "right. The large blue circle is in the center. </think> center": 2.0 / 3,
        # right answer, no claims; missing think tags; an empty cell
        "<think> It is red. </think> red": 0.0,
        "I see a small blue triangle in the top right. top right": 0.0,
        "<think> I see one shape, in the bottom. </think> 1": 0.0,
    }
    got = r(["q"] * len(cases), list(cases), metadata=[scene] * len(cases))
    np.testing.assert_allclose(got, list(cases.values()))
    # "top" is not "top right": the longest cell name wins
    assert rl_.claims("a square in the top right")[0][1] == (0, 2)
    assert rl_.claims("a square in the top")[0] == ({"shape": "square"}, (0, 1))
    assert rl_.claims("The red shapes: a small circle in the top. A square in the center") == [
        ({"color": "red", "size": "small", "shape": "circle"}, (0, 1)),
        ({"shape": "square"}, (1, 1))]
    with pytest.raises(ValueError, match="metadata"):
        r(["q"], ["<think> x </think> y"])
    assert "listing" in rewards.REWARDS
