"""The grain pipeline: batch contract, determinism, exact mid-epoch restore with worker processes,
mixture proportions, readers and every bad-data case skipped and counted."""

import io
import json
import tarfile

import numpy as np
import pytest
from absl import flags
from PIL import Image

from mmada_jax.config import base_config
from mmada_jax.data import build_batch_source, pipeline
from mmada_jax.data.codes import PoolQuantize, build_code_cache
from mmada_jax.data.shapesworld import scenes as sc
from mmada_jax.token_layout import TokenLayout

flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
LAYOUT = TokenLayout.custom(256, 64)
CODES = PoolQuantize(4, 64)


def make_config(**data):
    c = base_config()
    c.seq_len = 160
    c.data = pipeline.data_config()
    c.data.update(dict(image_size=32, num_image_tokens=16, max_text_len=60, think_prompt=False,
                       data_dir=""))
    c.data.shapesworld.use_tfds = False
    c.data.shapesworld.num_train = 400
    for k, v in data.items():
        c.data[k] = v
    return c


def take(src, n):
    return [next(src) for _ in range(n)]


def same(a, b):
    return all(a[t].keys() == b[t].keys() and all((a[t][k] == b[t][k]).all() for k in a[t])
               for t in a) and a.keys() == b.keys()


def test_batch_contract_and_image_tokens():
    src = build_batch_source(make_config(), LAYOUT, codes_fn=CODES)
    b = next(src)
    assert list(b) == list(make_config().tasks.keys())  # config order
    for t, rows in b.items():
        assert set(rows) == {"tokens", "key_mask", "target_mask"}
        assert rows["tokens"].shape == (2, 160) and rows["tokens"].dtype == np.int32
        assert rows["key_mask"].dtype == bool and rows["target_mask"].dtype == bool
        assert not (rows["tokens"] == LAYOUT.mask).any()  # every image span was filled
    t2i = b["t2i"]["tokens"]
    assert (t2i[:, 61] == LAYOUT.soi).all() and (t2i[:, 78] == LAYOUT.eoi).all()
    assert LAYOUT.is_image(t2i[:, 62:78]).all()
    assert (b["t2i"]["target_mask"] == LAYOUT.is_image(t2i)).all()
    mmu = b["mmu"]["tokens"]
    assert (mmu[:, :2] == [LAYOUT.mmu, LAYOUT.soi]).all() and LAYOUT.is_image(mmu[:, 2:18]).all()
    assert (b["lm"]["tokens"][:, 0] == LAYOUT.bos).all()
    json.dumps(src.get_state())


def test_image_tokens_are_the_codes_of_the_captioned_scene():
    """Each t2i row's image tokens are codes_fn of the scene its caption describes."""
    import sys, os
    sys.path.insert(0, os.path.dirname(__file__))
    from test_shapesworld import _scene_from_caption
    from mmada_jax.data import images
    c = make_config(caption_dropout=0.0, max_text_len=220)
    c.seq_len = 260
    c.data.shapesworld.knowledge_fraction = 0.0
    c.tasks.lm.batch_size = c.tasks.mmu.batch_size = 0
    c.tasks.t2i.batch_size = 4
    b = next(build_batch_source(c, LAYOUT, codes_fn=CODES))
    for row in b["t2i"]["tokens"]:
        text = bytes(int(t) for t in row[:221] if t < 256).decode()
        scene = _scene_from_caption(text)
        assert scene.objects, text
        want = CODES(images.normalize(sc.render(scene, 32))[None]).reshape(-1)
        assert (LAYOUT.image_codes(row[222:238]) == want).all()


def test_same_seed_same_batches_other_seed_differs():
    a = take(build_batch_source(make_config(seed=1), LAYOUT, codes_fn=CODES), 3)
    b = take(build_batch_source(make_config(seed=1), LAYOUT, codes_fn=CODES), 3)
    c = take(build_batch_source(make_config(seed=2), LAYOUT, codes_fn=CODES), 3)
    assert all(same(x, y) for x, y in zip(a, b))
    assert not all(same(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("workers,pack", [(0, "lm"), (2, "")])
def test_mid_epoch_restore_is_exact(workers, pack):
    cfg = make_config(num_workers=workers, pack=pack, seed=7)
    cfg.seq_len = 400 if pack else 160
    if pack:  # short documents (fact sentences) so that several share a row
        cfg.data.components = dict(f=dict(kind="shapesworld", task="facts"),
                                   a=dict(kind="shapesworld", task="arith"))
        cfg.data.mixture = dict(lm=dict(f=0.7, a=0.3))
    ref = build_batch_source(cfg, LAYOUT, codes_fn=CODES)
    want = take(ref, 6)
    src = build_batch_source(cfg, LAYOUT, codes_fn=CODES)
    take(src, 3)
    state = json.loads(json.dumps(src.get_state()))  # through a checkpoint
    for s in (ref, src):
        s.close()
    resumed = build_batch_source(cfg, LAYOUT, codes_fn=CODES)
    resumed.set_state(state)
    got = take(resumed, 3)
    resumed.close()
    assert all(same(x, y) for x, y in zip(got, want[3:]))
    if pack:
        assert max(w["lm"]["segment_ids"].max() for w in want) >= 2


def test_mixture_proportions_over_1000_rows():
    c = make_config(source="mixture")
    c.tasks.t2i.batch_size = 0
    c.tasks.mmu.batch_size = 0
    c.tasks.lm.batch_size = 50
    c.seq_len = 400  # nothing too long: every drawn example becomes a row
    c.data.components = dict(a=dict(kind="shapesworld", task="corpus"),
                             b=dict(kind="shapesworld", task="arith"),
                             f=dict(kind="shapesworld", task="facts"))
    c.data.mixture = dict(lm=dict(a=0.5, b=0.3, f=0.2))
    src = build_batch_source(c, LAYOUT)
    take(src, 20)
    st = src.stats()
    n = {k: st.get(f"rows/lm/{k}", 0) for k in "abf"}
    assert sum(n.values()) == 1000 and not any(k.startswith("skipped") for k in st)
    for k, w in dict(a=0.5, b=0.3, f=0.2).items():
        assert abs(n[k] / 1000 - w) < 0.03, n


def _png(color=(200, 10, 10), size=40):
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size + 8, 3), color, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_data_is_skipped_and_counted(tmp_path, caplog):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "ok.png").write_bytes(_png())
    (imgs / "bad.png").write_bytes(b"not a png at all")
    lines = [
        json.dumps(dict(image="ok.png", conversations=[
            dict(**{"from": "human", "value": "<image>\nWhat color?"}),
            dict(**{"from": "gpt", "value": "red"})])),
        "{this is not json",
        json.dumps(dict(image="missing.png", conversations=[
            dict(**{"from": "human", "value": "<image>\nHi"}), dict(**{"from": "gpt", "value": "x"})])),
        json.dumps(dict(image="bad.png", conversations=[
            dict(**{"from": "human", "value": "<image>\nHi"}), dict(**{"from": "gpt", "value": "x"})])),
        json.dumps(dict(image="ok.png", conversations=[
            dict(**{"from": "human", "value": "q" * 400}), dict(**{"from": "gpt", "value": "x"})])),
        json.dumps(dict(image="ok.png", conversations=[
            dict(**{"from": "human", "value": "Long?"}), dict(**{"from": "gpt", "value": "y" * 400})])),
    ]
    (tmp_path / "llava.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "a.txt").write_text("short doc\n\n" + "long " * 100 + "\n")
    c = make_config(source="mixture", shuffle=False)
    c.tasks.t2i.batch_size = 0
    c.data.components = dict(
        llava=dict(kind="jsonl", path=str(tmp_path / "llava.jsonl"), format="llava",
                   image_root=str(imgs)),
        txt=dict(kind="text", path=str(tmp_path / "a.txt")))
    c.data.mixture = dict(mmu=dict(llava=1.0), lm=dict(txt=1.0))
    src = build_batch_source(c, LAYOUT, codes_fn=CODES)
    b = take(src, 3)  # 6 good mmu rows: three passes over the 6 lines (2 usable per pass)
    st = src.stats()
    assert st["skipped/malformed"] == 3 and st["skipped/missing_file"] == 3
    assert st["skipped/bad_image"] == 3 and st["skipped/too_long"] == 3
    assert st["truncated/mmu"] == 3 and st["truncated/lm"] >= 1
    assert st["rows/mmu/llava"] == 6
    assert any("llava.jsonl:2" in r.message for r in caplog.records)
    row = b[0]["mmu"]["tokens"][0]
    assert LAYOUT.is_image(row[2:18]).all() and row[-1] == LAYOUT.eos


def test_readers_formats(tmp_path):
    from mmada_jax.data import readers
    rng = np.random.default_rng(0)
    (tmp_path / "x.jsonl").write_text("\n".join([
        json.dumps(dict(instruction="Add", input="1 and 2", output="3")),
        json.dumps(dict(question="2+2?", reasoning="2+2=4", answer="4")),
        json.dumps(dict(text="plain")), ""]))
    comp = readers.JsonlComponent(str(tmp_path / "x.jsonl"))
    src = comp.source()
    assert len(src) == 3
    ex = [comp.example(src[i], rng) for i in range(3)]
    assert ex[0]["messages"][0]["content"] == "Add\n\n1 and 2" and ex[0]["messages"][1]["content"] == "3"
    assert ex[1]["think"] and ex[1]["messages"][1]["content"] == "<think> 2+2=4 </think> 4"
    assert ex[2] == dict(kind="text", text="plain")
    # image folder with a captions.jsonl, and a tar shard
    d = tmp_path / "folder"
    d.mkdir()
    (d / "a.png").write_bytes(_png())
    (d / "b.png").write_bytes(_png((0, 0, 255)))
    (d / "b.txt").write_text("blue")
    (d / "captions.jsonl").write_text(json.dumps(dict(file="a.png", caption="red")) + "\n")
    ic = readers.ImageCaptionComponent(str(d))
    s = ic.source()
    got = [ic.example(s[i], rng) for i in range(len(s))]
    assert [g["caption"] for g in got] == ["red", "blue"] and got[0]["image"].shape == (40, 48, 3)
    with tarfile.open(tmp_path / "shard-0.tar", "w") as tf:
        for key, data in [("k1.png", _png()), ("k1.txt", b"a red box")]:
            info = tarfile.TarInfo(key)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tc = readers.ImageCaptionComponent(str(tmp_path / "shard-*.tar"))
    ts = tc.source()
    e = tc.example(ts[0], rng)
    assert e["caption"] == "a red box" and (e["image"][0, 0] == [200, 10, 10]).all()
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": ["one", "two", "three"]}), tmp_path / "t.parquet",
                   row_group_size=2)
    tcomp = readers.TextComponent(str(tmp_path / "t.parquet"))
    ps = tcomp.source()
    assert [tcomp.example(ps[i], rng)["text"] for i in range(3)] == ["one", "two", "three"]
    with pytest.raises(FileNotFoundError, match="no files match"):
        readers.TextComponent(str(tmp_path / "nothing*.txt")).source()


def test_code_cache_replaces_on_the_fly_codes(tmp_path):
    from mmada_jax.data.shapesworld.tasks import ShapesWorldComponent
    from mmada_jax.data import images
    comp = ShapesWorldComponent("t2i", use_tfds=False, image_size=32, num_train=400)
    s = comp.source()
    build_code_cache(lambda i: images.preprocess(images.decode(s[i]["image"]), 32), len(s),
                     CODES, str(tmp_path / "cache"))
    base = make_config(seed=3, caption_dropout=0.0)
    base.tasks.lm.batch_size = base.tasks.mmu.batch_size = 0
    cached = make_config(seed=3, caption_dropout=0.0, source="mixture")
    cached.tasks.lm.batch_size = cached.tasks.mmu.batch_size = 0
    cached.data.components = dict(sw_t2i=dict(kind="shapesworld", task="t2i",
                                              codes_cache=str(tmp_path / "cache")))
    cached.data.mixture = dict(t2i=dict(sw_t2i=1.0))
    a = take(build_batch_source(base, LAYOUT, codes_fn=CODES), 2)
    b = take(build_batch_source(cached, LAYOUT, codes_fn=None), 2)
    assert all(same(x, y) for x, y in zip(a, b))


def test_clear_errors():
    with pytest.raises(ValueError, match="mixture.lm"):
        build_batch_source(make_config(source="mixture"), LAYOUT)
    c = make_config()
    c.seq_len = 64
    with pytest.raises(ValueError, match="max_text_len"):
        build_batch_source(c, LAYOUT)
    c = make_config(data_dir="/nonexistent/dir", build_if_missing=False)
    c.data.shapesworld.use_tfds = True
    with pytest.raises(FileNotFoundError, match="Build it with"):
        build_batch_source(c, LAYOUT)


def _packed_lm_config(chat_weight: float):
    """A packed text_lm task (documents and chats) over byte-level ids: worked problems (chats)
    with weight `chat_weight`, fact documents with the rest; rows of 700 tokens."""
    c = make_config(source="mixture", pack="lm")
    c.tasks.t2i.batch_size = c.tasks.mmu.batch_size = 0
    c.tasks.lm.objective = "text_lm"  # takes documents and chats (text_answer: chats only)
    c.tasks.lm.batch_size = 6
    c.seq_len = 700  # byte-level ids: a worked problem is ~200 tokens
    c.data.components = dict(a=dict(kind="shapesworld", task="arith"),
                             d=dict(kind="shapesworld", task="facts"))
    c.data.mixture = dict(lm=dict(a=chat_weight, d=1.0 - chat_weight))
    return c


def _lm_rows(c, n_batches: int):
    """(segment_ids, target_mask, tokens) of the lm rows of `n_batches` batches."""
    bs = take(build_batch_source(c, LAYOUT), n_batches)
    return tuple(np.concatenate([b["lm"][k] for b in bs])
                 for k in ("segment_ids", "target_mask", "tokens"))


def test_packing_keeps_each_chat_in_its_own_eos_padded_row():
    """`pack` packs plain-text documents, but a chat (prompt + answer) always gets a row of its own
    with its eos padding in its segment: packed after one another, the segment boundary would tell
    the model where the answer ends, which the sampler's fixed-length masked region never does.
    An image task in `pack` is a named error."""
    c = _packed_lm_config(chat_weight=0.3)
    seg, tgt, tok = _lm_rows(c, 3)
    n_chat = n_packed = 0
    for r in range(seg.shape[0]):
        if tgt[r].all():  # documents only (a chat next ends the row), the eos tail segment 0
            n_packed += seg[r].max() >= 2
            assert seg[r, 0] == 1 and seg[r, -1] == 0
            continue
        n_chat += 1  # one chat: prompt unscored, then answer, then eos pads, all segment 1
        assert (seg[r] == 1).all()
        t = tgt[r]
        assert not t[0] and t[-1] and (np.diff(t.astype(int)) >= 0).all()
        assert tok[r, -1] == LAYOUT.eos and tok[r, -2] == LAYOUT.eos
    assert n_chat and n_packed
    c.data.pack = "t2i"
    c.tasks.t2i.batch_size = 2
    with pytest.raises(ValueError, match="t2i"):
        build_batch_source(c, LAYOUT)


def test_chat_pack_len_packs_chats_as_fixed_eos_padded_segments():
    """With `chat_pack_len` N, a chat shorter than N becomes a segment of exactly N tokens: prompt
    (unscored), answer, then at least one scored eos pad; several such chats (and documents) share
    a row. A chat of N tokens or more keeps its own row; N > seq_len is a named error."""
    c = _packed_lm_config(chat_weight=0.6)
    n = 230  # byte-level worked problems: ~180-300 tokens, so both cases occur
    c.data.chat_pack_len = n
    seg, tgt, tok = _lm_rows(c, 4)
    n_fixed = n_own = n_shared = 0
    for r in range(seg.shape[0]):
        if (seg[r] == 1).all() and not tgt[r].all():  # a long chat alone in its row
            n_own += 1
            assert tok[r, -1] == LAYOUT.eos
            continue
        chats = 0
        for sid in range(1, seg[r].max() + 1):
            idx = np.flatnonzero(seg[r] == sid)
            assert (np.diff(idx) == 1).all()
            t = tgt[r, idx]
            if t.all():
                continue  # a document
            chats += 1
            n_fixed += 1
            assert len(idx) == n, "a packed chat is exactly chat_pack_len tokens"
            assert not t[0] and t[-1] and (np.diff(t.astype(int)) >= 0).all()
            assert tok[r, idx[-1]] == LAYOUT.eos
        n_shared += chats >= 2
    assert n_fixed and n_own and n_shared, (n_fixed, n_own, n_shared)
    c.data.chat_pack_len = 701
    with pytest.raises(ValueError, match="chat_pack_len"):
        build_batch_source(c, LAYOUT)


def test_readback_rows_in_the_pipeline():
    """readback_prob=1: every training mmu row keeps a masked image span and scores only the end
    of its answer; 0 (the default): every image span is filled; t2i rows are never touched."""
    plain = next(build_batch_source(make_config(), LAYOUT, codes_fn=CODES))
    rb = next(build_batch_source(make_config(readback_prob=1.0), LAYOUT, codes_fn=CODES))
    assert (plain["mmu"]["tokens"] == rb["mmu"]["tokens"]).sum() > 0
    assert LAYOUT.is_image(plain["mmu"]["tokens"][:, 2:18]).all()
    assert (rb["mmu"]["tokens"][:, 2:18] == LAYOUT.mask).all()
    assert LAYOUT.is_image(rb["t2i"]["tokens"][:, 62:78]).all()
    for r in range(rb["mmu"]["tokens"].shape[0]):
        toks, tgt = rb["mmu"]["tokens"][r], rb["mmu"]["target_mask"][r]
        first, prompt_end = int(np.argmax(tgt)), int(np.flatnonzero(toks == LAYOUT.end_header)[-1]) + 2
        assert tgt[first:].all() and first > prompt_end  # part of the answer is visible
    with pytest.raises(ValueError, match="readback_prob"):
        next(build_batch_source(make_config(readback_prob=1.5), LAYOUT, codes_fn=CODES))
    with pytest.raises(ValueError, match="readback_min_prefix"):
        next(build_batch_source(make_config(readback_prob=0.5, readback_min_prefix=1.0), LAYOUT,
                                codes_fn=CODES))


def test_salient_rows_in_the_pipeline():
    """salient_prob=1: every training mmu row keeps its image and scores only the salient words
    of its answer (each scored run of tokens spells some of them), never its eos pads; with
    readback_prob=1 too, readback comes first; bad settings are named errors."""
    from mmada_jax.data.shapesworld import scenes as sc
    words = list(sc.COLOR_NAMES) + list(sc.SHAPES)
    c = make_config(salient_prob=1.0, salient_words=words)
    c.seq_len, c.tasks.mmu.batch_size = 400, 8  # byte tokens: whole answers fit the row
    b = next(build_batch_source(c, LAYOUT, codes_fn=CODES))
    n_words = 0
    for toks, tgt in zip(b["mmu"]["tokens"], b["mmu"]["target_mask"]):
        assert LAYOUT.is_image(toks[2:18]).all()
        assert not tgt[toks == LAYOUT.eos].any() and not tgt[toks == LAYOUT.eot_id].any()
        runs = np.split(np.flatnonzero(tgt), np.flatnonzero(np.diff(np.flatnonzero(tgt)) > 1) + 1)
        for r in runs:
            if len(r):
                spelled = bytes(int(t) for t in toks[r]).decode()  # " yellow circle": two
                assert spelled.startswith(" ") and set(spelled.split()) <= set(words), spelled
                n_words += len(spelled.split())
    assert n_words >= 8
    assert b["t2i"]["target_mask"].sum() == 2 * 16  # t2i rows untouched: their image codes
    rb = make_config(salient_prob=1.0, salient_words=words, readback_prob=1.0)
    assert (next(build_batch_source(rb, LAYOUT, codes_fn=CODES))["mmu"]["tokens"][:, 2:18]
            == LAYOUT.mask).all()
    per_task = make_config(salient_prob=1.0, salient_words=words, readback_prob=1.0)
    per_task.tasks.mmu.readback_prob = 0.0  # a task's own readback_prob wins: images kept
    assert LAYOUT.is_image(next(build_batch_source(per_task, LAYOUT, codes_fn=CODES))["mmu"][
        "tokens"][:, 2:18]).all()
    per_task.tasks.mmu.readback_prob = 1.5
    with pytest.raises(ValueError, match="readback_prob=1.5 not in"):
        next(build_batch_source(per_task, LAYOUT, codes_fn=CODES))
    with pytest.raises(ValueError, match="salient_prob"):
        next(build_batch_source(make_config(salient_prob=2.0, salient_words=words), LAYOUT,
                                codes_fn=CODES))
    with pytest.raises(ValueError, match="salient_words"):
        next(build_batch_source(make_config(salient_prob=0.5), LAYOUT, codes_fn=CODES))


def test_first_sentence_readback_rows_show_the_listing_and_score_the_rest():
    """readback_cut='first_sentence': a readback row's visible answer ends after its first worked
    sentence past readback_min_prefix (the listing or inventory) and the scored rest starts the
    next sentence; captions (one worked sentence) keep their image and their whole target."""
    c = make_config(readback_prob=1.0, readback_cut="first_sentence", readback_min_prefix=0.3)
    c.seq_len, c.tasks.mmu.batch_size = 400, 16  # byte tokens: whole answers fit the row
    src = build_batch_source(c, LAYOUT, codes_fn=CODES)
    n_rb = n_kept = 0
    for _ in range(2):
        b = next(src)["mmu"]
        for toks, tgt in zip(b["tokens"], b["target_mask"]):
            first = int(np.argmax(tgt))
            prompt_end = int(np.flatnonzero(toks == LAYOUT.end_header)[-1]) + 2
            if LAYOUT.is_image(toks[2:18]).all():  # an ordinary row: the whole answer scored
                assert first == prompt_end
                n_kept += 1
                continue
            assert (toks[2:18] == LAYOUT.mask).all()
            shown = bytes(int(t) for t in toks[prompt_end:first]).decode()
            rest = bytes(int(t) for t in toks[first:] if t < 256).decode()
            assert shown.startswith("<think>") and shown.endswith(".") and rest[0] == " ", shown
            assert "</think>" in rest and rest.index(".") < rest.index("</think>"), rest
            n_rb += 1
    assert n_rb and n_kept, (n_rb, n_kept)
    with pytest.raises(ValueError, match="readback_cut"):
        next(build_batch_source(make_config(readback_prob=0.5, readback_cut="middle"), LAYOUT,
                                codes_fn=CODES))


def test_sw_gpu_readback_experiment_turns_readback_on_for_sft(tmp_path):
    import os
    from mmada_jax import demo
    from mmada_jax.config import load_config_file
    dc = load_config_file(os.path.join(demo.EXPERIMENTS, "sw_gpu_readback.py"))
    cfgs = {s: demo._stage_config(s, dc.variant, str(tmp_path), dc) for s in demo.STAGES}
    assert cfgs["sft"].data.readback_prob == 0.25
    # UniGRPO trains on rollouts; its value records the policy's fine-tuning for the evaluator
    assert cfgs["pretrain"].data.readback_prob == 0.0 and cfgs["grpo"].data.readback_prob == 0.25
    assert cfgs["sft"].data.readback_cut == "uniform"
    gpu = {s: demo._stage_config(s, "gpu", str(tmp_path)) for s in demo.STAGES}  # the default
    assert [gpu[s].data.readback_prob for s in demo.STAGES] == [0.0, 0.25, 0.25]
    assert demo._stage_config("sft", "cpu", str(tmp_path)).data.readback_prob == 0.0
    path = os.path.join(demo.EXPERIMENTS, "sw_gpu_readback.py")
    half = {s: demo._stage_config(s, "gpu", str(tmp_path), load_config_file(path, "0.5")).data
            for s in demo.STAGES}
    assert [half[s].readback_prob for s in demo.STAGES] == [0.0, 0.5, 0.5]
    assert half["sft"].shapesworld.vqa_cot == "color_first"  # the rest of the gpu default
    for bad, msg in (("half", "not a number"), ("1.5", "outside")):
        with pytest.raises(ValueError, match=msg):
            load_config_file(path, bad)
    dc = load_config_file(os.path.join(demo.EXPERIMENTS, "sw_gpu_readback_sentence.py"))
    sft = demo._stage_config("sft", dc.variant, str(tmp_path), dc).data
    assert (sft.readback_prob, sft.readback_cut, sft.readback_min_prefix) == (
        0.25, "first_sentence", 0.3)


@pytest.mark.parametrize("style,head", [("factored", ("The colors:", "The shapes:")),
                                        ("filtered", ("I see ",))])
def test_vqa_cot_style_reaches_the_training_rows(style, head):
    """config.data.shapesworld.vqa_cot picks how the mmu rows' counting answers are written."""
    import re
    c = make_config()
    c.seq_len, c.tasks.mmu.batch_size = 400, 16  # byte tokens: whole answers fit the row
    c.data.shapesworld.vqa_cot = style
    src = build_batch_source(c, LAYOUT, codes_fn=CODES)
    seen = 0
    for _ in range(4):
        for toks in next(src)["mmu"]["tokens"]:
            text = bytes(int(t) for t in toks if t < 256).decode()
            if re.search(r"How many (\w+ shapes are|circles|squares|triangles)", text):
                assert text.split("<think> ", 1)[1].startswith(head), text
                seen += 1
    assert seen >= 2
