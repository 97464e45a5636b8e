"""UniGRPO's held-out reward eval (rl/heldout.py): the same test-split prompts and sampling keys
for both policies, per-prompt means against NumPy, the paired comparison and its sign test."""

import types

import jax
import ml_collections
import numpy as np
import pytest

from mmada_jax.evals.paired import sign_test_p
from mmada_jax.rl import heldout
from mmada_jax.rl import trainer as tr


class FakeTrainer:
    """Rollouts whose rewards depend on (params, prompt, sample, key): records every call."""

    def __init__(self, tasks=("reasoning", "vqa"), prompts=(2, 1), group=3):
        self.rl = ml_collections.ConfigDict(dict(group_size=group, heldout_chunks=3,
                                                 heldout_seed=5))
        self.tasks = list(tasks)
        self.n = dict(zip(tasks, prompts))
        self.prompt_calls, self.rollout_calls = [], []

    def prompts_for(self, task, step, split="train", seed=None):
        self.prompt_calls.append((task, step, split, seed))
        return [dict(id=f"{task}-{split}-{seed}-{step}-{i}") for i in range(self.n[task])]

    def reward(self, params, item_id, sample, key_sum):
        return (hash((item_id, sample)) % 7) / 3.0 + params + 0.001 * key_sum

    def rollout(self, params, step, items_by_task=None, key=None):
        ksum = int(np.asarray(jax.random.key_data(key)).sum() % 1000)
        self.rollout_calls.append((params, step, ksum))
        g = int(self.rl.group_size)
        task, rewards, corr = [], [], []
        for t in self.tasks:
            for it in items_by_task.get(t, ()):
                for s in range(g):
                    task.append(t)
                    rewards.append(self.reward(params, it["id"], s, ksum))
                    corr.append(float(s == 0))
        rewards = np.asarray(rewards)
        parts = {f"{t}/correctness": np.asarray(corr) for t in items_by_task}
        parts = {k: v[np.asarray(task) == k.split("/")[0]] for k, v in parts.items()}
        return tr.RolloutBatch({}, None, task, rewards, rewards >= 1.0, parts, [], [])


def test_heldout_rewards_per_prompt_means_against_numpy():
    fake = FakeTrainer()
    out = heldout.heldout_rewards(fake, 0.25)
    # every prompt drawn from the test split with the held-out seed, chunk c as step c
    assert sorted(fake.prompt_calls) == sorted(
        (t, c, "test", 5) for t in fake.tasks for c in range(3))
    g = 3
    for t in fake.tasks:
        ref, ref_pass = [], []
        for c in range(3):
            ksum = fake.rollout_calls[c][2]
            for i in range(fake.n[t]):
                rs = [fake.reward(0.25, f"{t}-test-5-{c}-{i}", s, ksum) for s in range(g)]
                ref.append(np.mean(rs))
                ref_pass.append(np.mean([r >= 1.0 for r in rs]))
        np.testing.assert_allclose(out[t]["prompt_means"], ref, atol=1e-6)
        np.testing.assert_allclose(out[t]["prompt_pass"], ref_pass, atol=1e-6)
        assert out[t]["pass_rate"] == pytest.approx(np.mean(ref_pass))
        assert out[t]["prompts"] == 3 * fake.n[t] and out[t]["samples"] == g
        assert out[t]["reward_mean"] == pytest.approx(np.mean(ref))
        assert out[t]["correctness"] == pytest.approx(1 / g)


def test_both_policies_see_the_same_prompts_and_keys():
    fake = FakeTrainer()
    heldout.heldout_rewards(fake, 0.0)
    heldout.heldout_rewards(fake, 1.0)
    first, second = fake.rollout_calls[:3], fake.rollout_calls[3:]
    assert [(s, k) for _, s, k in first] == [(s, k) for _, s, k in second]
    assert len({k for _, _, k in first}) == 3  # a fresh key per chunk
    assert fake.prompt_calls[:6] == fake.prompt_calls[6:]


def test_compare_heldout_counts_prompts_up_and_down_with_sign_test():
    def res(means):
        return dict(prompt_means=means, reward_mean=float(np.mean(means)), pass_rate=0.5,
                    samples=4)
    before = {"reasoning": res([1.0, 2.0, 3.0, 0.5, 1.0, 1.0, 0.0, 0.0]),
              "vqa": res([1.0, 1.0])}
    after = {"reasoning": res([1.5, 2.0, 2.0, 0.75, 2.0, 1.25, 0.5, 0.25]),
             "vqa": res([1.0, 1.0])}
    c = heldout.compare_heldout(before, after)
    r = c["reasoning"]
    assert (r["up"], r["down"], r["prompts"], r["samples"]) == (6, 1, 8, 4)
    assert r["p"] == pytest.approx(sign_test_p(6, 1)) and r["p"] == pytest.approx(16 / 128)
    assert r["after"] - r["before"] == pytest.approx(np.mean([0.5, 0, -1, 0.25, 1, 0.25, 0.5,
                                                              0.25]))
    assert (c["vqa"]["up"], c["vqa"]["down"], c["vqa"]["p"]) == (0, 0, 1.0)
    lines = heldout.describe_heldout(c)
    assert lines[0].startswith("held-out reasoning: reward 1.062 -> 1.281")
    assert "(8 prompts x 4; reward 6 up, 1 down, p 0.12)" in lines[0]
    assert "pass_up" not in r  # results without per-prompt pass shares (written before them)
    with pytest.raises(ValueError, match="reasoning has 8 prompts before and 2"):
        heldout.compare_heldout(before, {"reasoning": res([1.0, 2.0])})


def test_compare_heldout_tests_the_per_prompt_pass_shares_too():
    """The sampled accuracy per prompt (`prompt_pass`) gets its own up / down and sign test,
    apart from the reward's: a reward can rise on format alone."""
    def res(means, passes):
        return dict(prompt_means=means, prompt_pass=passes, reward_mean=float(np.mean(means)),
                    pass_rate=float(np.mean(passes)), samples=4)
    before = {"reasoning": res([1.0, 2.0, 3.0, 1.0, 2.0], [0.25, 0.5, 1.0, 0.0, 0.5])}
    after = {"reasoning": res([1.5, 2.5, 3.0, 0.5, 2.5], [0.25, 0.75, 1.0, 0.25, 0.75])}
    r = heldout.compare_heldout(before, after)["reasoning"]
    assert (r["up"], r["down"]) == (3, 1) and (r["pass_up"], r["pass_down"]) == (3, 0)
    assert r["pass_p"] == pytest.approx(sign_test_p(3, 0)) == pytest.approx(0.25)
    line = heldout.describe_heldout({"reasoning": r})[0]
    assert line.endswith("reward 3 up, 1 down, p 0.62; pass rate 3 up, 0 down, p 0.25)")
    with pytest.raises(ValueError, match="reasoning has 5 prompts before and 2"):
        heldout.compare_heldout(before, {"reasoning": res([1.0, 2.0], [0.0, 1.0])})


def test_heldout_needs_chunks():
    fake = FakeTrainer()
    fake.rl.heldout_chunks = 0
    with pytest.raises(ValueError, match="rl.heldout_chunks=0"):
        heldout.heldout_rewards(fake, 0.0)


def test_prompts_for_test_split_with_its_own_seed():
    """The trainer's prompt source for the held-out eval: test-split items, seeded apart from the
    rollouts' and still deterministic."""
    from mmada_jax.evals import shapesworld_eval as swe
    rl = tr.rl_config()
    rl.tasks.reasoning.prompts = 3
    trainer = types.SimpleNamespace(rl=rl, config=ml_collections.ConfigDict(dict(data=None)))
    got = tr.UniGRPO.prompts_for(trainer, "reasoning", 2, split="test", seed=4)
    ref = swe.reasoning_items(3, "test", 4 * 100003 + 2)
    assert [x["question"] for x in got] == [x["question"] for x in ref]
    train = tr.UniGRPO.prompts_for(trainer, "reasoning", 2)
    assert [x["question"] for x in train] == [
        x["question"] for x in swe.reasoning_items(3, "train", 2)]
    vqa = tr.UniGRPO.prompts_for(trainer, "vqa", 0, split="test", seed=4)
    assert len(vqa) == int(rl.tasks.vqa.prompts)


def test_heldout_tasks_choose_a_subset_and_reject_unknown_names():
    fake = FakeTrainer(tasks=("reasoning", "vqa", "t2i"), prompts=(2, 1, 1))
    fake.rl.heldout_tasks = "reasoning, vqa"
    out = heldout.heldout_rewards(fake, 0.0, chunks=2)
    assert sorted(out) == ["reasoning", "vqa"] and out["reasoning"]["prompts"] == 4
    assert all(t != "t2i" for t, *_ in fake.prompt_calls)
    fake.rl.heldout_tasks = "reasoning,pope"
    with pytest.raises(ValueError, match=r"config.rl.heldout_tasks: \['pope'\]"):
        heldout.heldout_rewards(fake, 0.0)


def test_heldout_config_is_checked_by_name():
    rl = ml_collections.ConfigDict(dict(heldout_chunks=0, heldout_tasks="pope"))
    heldout.check_heldout_config(rl, ["reasoning", "vqa"])  # off: the names are not used
    rl.heldout_chunks = 2
    with pytest.raises(ValueError, match=r"config.rl.heldout_tasks: \['pope'\]"):
        heldout.check_heldout_config(rl, ["reasoning", "vqa"])
    rl.heldout_tasks = "vqa"
    heldout.check_heldout_config(rl, ["reasoning", "vqa"])
    rl.heldout_chunks = -1
    with pytest.raises(ValueError, match="config.rl.heldout_chunks=-1"):
        heldout.check_heldout_config(rl, ["reasoning", "vqa"])
