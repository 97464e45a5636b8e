"""UniGRPO prompt replay (rl/replay.py): which prompts are queued, the order and number asked again,
the ask limit, capacity, the saved queue, config errors, and the trainer's use of it."""

import json
import types

import ml_collections
import numpy as np
import pytest

from mmada_jax.rl import replay as rp
from mmada_jax.rl import trainer as tr


def items(tag, n):
    return [dict(id=f"{tag}{i}") for i in range(n)]


def ids(xs):
    return [x["id"] for x in xs]


def test_unsolved_prompts_come_back_oldest_first_up_to_the_share():
    r = rp.PromptReplay({"reasoning": 2}, uses=2, below=1.0, capacity=10)
    got, left = r.take("reasoning", items("a", 4))
    assert ids(got) == ["a0", "a1", "a2", "a3"] and left == [2, 2, 2, 2]  # empty queue: all new
    r.update("reasoning", got, left, [1.0, 0.5, 0.0, 0.25])  # a0 solved: not queued
    assert ids(q["item"] for q in r.queues["reasoning"]) == ["a1", "a2", "a3"]
    got, left = r.take("reasoning", items("b", 4))
    assert ids(got) == ["a1", "a2", "b0", "b1"] and left == [1, 1, 2, 2]
    r.update("reasoning", got, left, [0.5, 1.0, 0.5, 1.0])  # a2 and b1 solved: leave
    assert [(q["item"]["id"], q["left"]) for q in r.queues["reasoning"]] == [
        ("a3", 2), ("a1", 1), ("b0", 2)]
    got, left = r.take("reasoning", items("c", 4))
    assert ids(got) == ["a3", "a1", "c0", "c1"] and left == [1, 0, 2, 2]
    r.update("reasoning", got, left, [0.0, 0.0, 1.0, 1.0])  # a1 used its asks up
    assert [(q["item"]["id"], q["left"]) for q in r.queues["reasoning"]] == [("b0", 2), ("a3", 1)]


def test_fewer_prompts_than_the_share_and_untracked_tasks():
    r = rp.PromptReplay({"reasoning": 3, "vqa": 0}, uses=1)
    assert r.counts == {"reasoning": 3} and r.active
    got, left = r.take("vqa", items("v", 2))  # replay off for vqa: untouched
    assert ids(got) == ["v0", "v1"] and left == [1, 1]
    r.update("vqa", got, left, [0.0, 0.0])
    assert "vqa" not in r.queues
    got, left = r.take("reasoning", items("a", 2))
    r.update("reasoning", got, left, [0.0, 0.5])
    got, left = r.take("reasoning", items("b", 2))  # share 3 but only 2 prompts a step
    assert ids(got) == ["a0", "a1"] and left == [0, 0]
    assert not rp.PromptReplay({"reasoning": 0}).active


def test_replay_below_threshold_and_capacity():
    r = rp.PromptReplay({"t": 4}, uses=3, below=0.5, capacity=3)
    got, left = r.take("t", items("a", 5))
    r.update("t", got, left, [0.4, 0.5, 0.6, 0.0, 0.49])  # below 0.5 only: a0, a3, a4
    assert ids(q["item"] for q in r.queues["t"]) == ["a0", "a3", "a4"] and r.dropped["t"] == 0
    got, left = r.take("t", items("b", 1))
    r.update("t", items("b", 1), [3], [0.0])
    assert ids(q["item"] for q in r.queues["t"]) == ["a3", "a4", "b0"]
    got, left = r.take("t", items("c", 4))
    assert ids(got) == ["a3", "a4", "b0", "c0"]
    r.update("t", got, left, [0.0] * 4)
    # four queued (a3, a4, b0 with 1-2 asks left, c0 new) against capacity 3: the oldest goes
    assert ids(q["item"] for q in r.queues["t"]) == ["a4", "b0", "c0"] and r.dropped["t"] == 1


def test_queue_saved_and_restored(tmp_path):
    r = rp.PromptReplay({"reasoning": 1, "vqa": 1}, uses=2)
    vqa_item = dict(question="How many?", scene='[{"col": 1}]', answer="2")
    r.update("reasoning", items("a", 2), [2, 1], [0.0, 0.5])
    r.update("vqa", [vqa_item], [2], [0.5])
    r.save(str(tmp_path), step=7)
    assert not (tmp_path / "replay.json.tmp").exists()
    s = rp.PromptReplay({"reasoning": 1, "vqa": 1}, uses=2)
    assert s.restore(str(tmp_path)) == 7
    assert s.queues == r.queues and s.dropped == r.dropped
    assert s.take("vqa", items("x", 1)) == ([vqa_item], [1])
    (tmp_path / "replay.json").write_text('{"queues": ')
    with pytest.raises(ValueError, match="replay.json: unreadable prompt-replay state"):
        s.restore(str(tmp_path))
    assert rp.PromptReplay({}).restore(str(tmp_path)) is None  # replay off: file not read


def test_config_errors_name_the_key():
    rl = tr.rl_config()
    rl.tasks.reasoning.prompts = 4
    rl.tasks.reasoning.replay_share = 0.5
    assert rp.replay_counts(rl, ["reasoning", "vqa"]) == {"reasoning": 2, "vqa": 0}
    rl.tasks.vqa.replay_share = 1.5
    with pytest.raises(ValueError, match=r"config.rl.tasks.vqa.replay_share=1.5"):
        rp.replay_counts(rl, ["reasoning", "vqa"])
    rl.tasks.vqa.replay_share = 0.0
    rl.replay_uses = 0
    with pytest.raises(ValueError, match="config.rl.replay_uses=0"):
        rp.PromptReplay.from_config(rl, ["reasoning"])
    rl.replay_uses, rl.replay_below = 2, 0.0
    with pytest.raises(ValueError, match="config.rl.replay_below=0.0"):
        rp.PromptReplay.from_config(rl, ["reasoning"])


def test_group_pass_rates():
    np.testing.assert_allclose(rp.group_pass_rates([1, 0, 1, 1, 1, 1, 0, 0, 0], 3),
                               [2 / 3, 1.0, 0.0])
    with pytest.raises(ValueError, match="not whole groups of 4"):
        rp.group_pass_rates([1, 0, 1], 4)


def fake_trainer(share):
    """A UniGRPO with only what step_prompts / _update_replay use (no model)."""
    t = object.__new__(tr.UniGRPO)
    rl = tr.rl_config()
    rl.group_size = 2
    rl.tasks.reasoning.prompts, rl.tasks.vqa.prompts = 2, 1
    rl.tasks.reasoning.replay_share = share
    t.rl, t.tasks = rl, ["reasoning", "vqa"]
    t.replay = rp.PromptReplay.from_config(rl, t.tasks)
    t.prompts_for = lambda task, step: items(f"{task}{step}-", int(rl.tasks[task].prompts))
    return t


def test_trainer_replays_a_failed_reasoning_prompt_in_the_next_step():
    t = fake_trainer(0.5)
    for step, passed in ((0, [1, 0, 1, 1, 0, 0]), (1, [1, 1, 1, 1, 1, 1])):
        got, left = t.step_prompts(step)
        if step == 0:
            assert ids(got["reasoning"]) == ["reasoning0-0", "reasoning0-1"]
        else:  # the prompt whose group was half right comes back first
            assert ids(got["reasoning"]) == ["reasoning0-0", "reasoning1-0"]
        assert ids(got["vqa"]) == [f"vqa{step}-0"]
        rb = types.SimpleNamespace(task=["reasoning"] * 4 + ["vqa"] * 2,
                                   passed=np.asarray(passed, bool))
        log = t._update_replay(rb, got, left)
        assert log["reasoning/replayed"] == step
        assert log["reasoning/replay_queued"] == (1 if step == 0 else 0)  # solved: gone
        assert "vqa/replayed" not in log
    off = fake_trainer(0.0)  # replay off: the fresh prompts, nothing logged
    got, _ = off.step_prompts(3)
    assert got == {"reasoning": items("reasoning3-", 2), "vqa": items("vqa3-", 1)}
    assert off._update_replay(None, got, {}) == {}
    json.dumps(t.replay.state())  # the saved state is plain JSON


@pytest.mark.parametrize("overrides,match", [
    (dict(tasks=dict(reasoning=dict(replay_share=2.0))), "rl.tasks.reasoning.replay_share=2.0"),
    (dict(heldout_chunks=2, heldout_tasks="reasoning", tasks=dict(reasoning=dict(prompts=0))),
     r"heldout_tasks: \['reasoning'\] not among"),
    (dict(tasks=dict(reasoning=dict(prompts=0), vqa=dict(prompts=0), t2i=dict(prompts=0))),
     "no task has prompts > 0"),
])
def test_bad_stage_settings_fail_before_anything_is_built(tmp_path, overrides, match):
    cfg = ml_collections.ConfigDict(dict(rl=tr.rl_config().to_dict()))
    cfg.rl.update(overrides)
    workdir = tmp_path / "grpo"
    with pytest.raises(ValueError, match=match):
        tr.UniGRPO(cfg, str(workdir))  # no model config at all: the check comes first
    assert not workdir.exists()  # no config.json, checkpoint folder or TensorBoard writer
