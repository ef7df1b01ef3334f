"""The batch sources over WebDataset shards (ShardPairs) and LLaVA instruction JSON feed the model,
deterministically and split by rank, and name the file and record of bad input (helpers:
tests/shard_kit.py)."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from shard_kit import CAPTIONS, SAMPLES, load_real_images, raw_tar, real_pairs, sample_bytes

from lynxlib.build import build_lm, build_model
from lynxlib.config import load
from lynxlib.data import PromptFormatter
from lynxlib.formats import FormatError
from lynxlib.images import encode_image
from lynxlib.llava_data import LlavaError, LlavaInstructions, read_llava_records
from lynxlib.pair_data import ShardPairs, index_shard
from lynxlib.shards import Pair, ShardError, write_shard
from lynxlib.tokenizer import train_tokenizer
from lynxlib.vision import create_clip


@pytest.fixture(scope="module")
def real_images() -> dict[str, np.ndarray]:
    return load_real_images()


# ------------------------------------------------------------------------------- batch sources
WORDS = ("a the red blue grace hopper portrait uniform logo present paper wrapped in small and grey "
         "what is this picture describe").split()


@pytest.fixture(scope="module")
def smoke_model():
    torch.manual_seed(0)
    rnd = random.Random(0)
    tok = train_tokenizer([" ".join(rnd.choice(WORDS) for _ in range(8)) for _ in range(200)], vocab_size=300)
    cfg = load("params/smoke.yaml", "ours")
    lm = build_lm(cfg.lm, vocab_size=len(tok), pad_id=tok.pad_token_id, bos_id=tok.bos_token_id,
                  eos_id=tok.eos_token_id)
    model = build_model(cfg, tokenizer=tok, lm=lm, clip_visual_or_tower=create_clip(cfg, vocab_size=len(tok)).visual)
    fmt = PromptFormatter(tokenizer=tok, template=cfg.generation.template,
                          num_image_tokens=model.num_image_tokens, max_len=cfg.pretrain_low.max_seq_len)
    return cfg, model.eval(), fmt


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory, real_images):
    folder = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    for s in range(4):
        pairs = [Pair(key=f"{s}{i:05d}", image=rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8),
                      caption=f"{CAPTIONS[i % 3]} {s}") for i in range(5)]
        write_shard(folder / f"{s:05d}.tar", pairs + real_pairs(real_images, prefix=f"r{s}-"))
    return folder


def test_shard_pairs_feed_the_model(shard_dir, smoke_model):
    cfg, model, fmt = smoke_model
    size = cfg.world.image_size_low
    source = ShardPairs(paths=str(shard_dir / "{00000..00003}.tar"), formatter=fmt, resolution=size,
                        batch_size=4, seed=3)
    batch = source.batch(0, 0, 0, 1)
    assert set(batch) == {"input_ids", "labels", "attention_mask", "has_visual", "pixel_values"}
    assert batch["pixel_values"].shape == (4, 3, size, size) and batch["has_visual"].all()
    q = model.num_image_tokens
    assert (batch["input_ids"][:, 1:1 + q] == model.image_token_id).all()
    assert (batch["labels"][:, : 1 + q] == -100).all() and (batch["labels"][:, 1 + q] != -100).all()
    model.set_resolution(size)
    with torch.no_grad():
        loss = model(**batch).loss
    assert torch.isfinite(loss) and loss > 0


def test_shard_pairs_are_deterministic_and_split_by_rank(shard_dir, smoke_model):
    _, _, fmt = smoke_model
    make = lambda: ShardPairs(paths=[str(shard_dir / f"{s:05d}.tar") for s in range(4)], formatter=fmt,  # noqa: E731
                              resolution=32, batch_size=3, seed=1, grad_accum=2)
    a, b = make(), make()
    for args in [(0, 0, 0, 2), (5, 1, 1, 2), (2, 1, 0, 1)]:
        assert a.keys(*args) == b.keys(*args)
        x, y = a.batch(*args), b.batch(*args)
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert a.rank_shards(1, 2) == [str(shard_dir / "00001.tar"), str(shard_dir / "00003.tar")]
    rank0 = {k for step in range(3) for m in range(2) for k in a.keys(step, m, 0, 2)}  # 18 of rank 0's 16: wraps
    rank1 = {k for step in range(3) for m in range(2) for k in a.keys(step, m, 1, 2)}
    assert rank0 and rank1 and not rank0 & rank1
    assert {k[0] for k in rank0} <= {"0", "2", "r"} and all(k[1] in "02" for k in rank0 if k[0] == "r")
    epoch = [k for step in range(6) for m in range(2) for k in a.keys(step, m, 0, 1)][:32]  # one epoch: each once
    assert sorted(epoch) == sorted(k for s in range(4) for k in index_shard(str(shard_dir / f"{s:05d}.tar")).keys)
    assert a.keys(0, 1, 0, 1) != a.keys(0, 0, 0, 1) and a.keys(1, 0, 0, 1) == a.keys(0, 2, 0, 1)
    with pytest.raises(ValueError, match="4 shards cannot be split over 5 ranks"):
        a.batch(0, 0, 0, 5)


def test_shard_pairs_skip_bad_samples(tmp_path, smoke_model):
    _, _, fmt = smoke_model
    png = encode_image(np.full((8, 8, 3), 100, np.uint8))
    raw_tar(tmp_path / "mixed.tar", [("a.png", png), ("a.txt", b"fine"), ("b.png", b"broken"), ("b.txt", b"x"),
                                     ("c.png", png)])
    strict = ShardPairs(paths=str(tmp_path / "mixed.tar"), formatter=fmt, resolution=16, batch_size=2)
    with pytest.raises(ShardError, match="key 'c'"):
        strict.batch(0, 0, 0, 1)
    lenient = ShardPairs(paths=str(tmp_path / "mixed.tar"), formatter=fmt, resolution=16, batch_size=4,
                         on_error="skip")
    assert lenient.keys(0, 0, 0, 1) == ["a"] * 4
    assert lenient.stats.skipped["missing_caption"] == 1 and lenient.stats.skipped["bad_image"] >= 1


# ------------------------------------------------------------------------------- LLaVA
def llava_file(tmp_path, records) -> Path:
    path = tmp_path / "instruct.json"
    path.write_text(json.dumps(records))
    return path


def llava_records():
    return [
        {"id": "hopper-1", "image": "photos/grace_hopper.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWho is in the picture?"}, {"from": "gpt", "value": "Grace Hopper."},
            {"from": "human", "value": "Describe the uniform."}, {"from": "gpt", "value": "A dark navy uniform."}]},
        {"id": 7, "image": "photos/logo2.png", "conversations": [
            {"from": "human", "value": "What is this?\n<image>"}, {"from": "gpt", "value": "The matplotlib logo."}]},
        {"id": "text-only", "conversations": [
            {"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello."}]},
    ]


def test_llava_records_and_batches(tmp_path, smoke_model):
    cfg, model, fmt = smoke_model
    (tmp_path / "photos").mkdir()
    for name in SAMPLES[:2]:
        (tmp_path / "photos" / name).write_bytes(sample_bytes(name))
    path = llava_file(tmp_path, llava_records())
    records = read_llava_records(path)
    assert [r.id for r in records] == ["hopper-1", "7", "text-only"]
    assert records[0].turns == (("Who is in the picture?", "Grace Hopper."),
                                ("Describe the uniform.", "A dark navy uniform."))
    assert records[1].turns == (("What is this?", "The matplotlib logo."),) and records[2].image is None
    size = cfg.world.image_size_high
    source = LlavaInstructions(json_paths=[path], image_root=tmp_path, formatter=fmt, resolution=size, batch_size=3)
    batch = source.batch(0, 0, 0, 1)
    ids = source.ids(0, 0, 0, 1)
    assert sorted(ids) == ["7", "hopper-1", "text-only"]
    assert batch["has_visual"].tolist() == [i != "text-only" for i in ids]
    assert batch["pixel_values"].shape == (2, 3, size, size)
    model.set_resolution(size)
    with torch.no_grad():
        loss = model(**batch).loss
    assert torch.isfinite(loss) and loss > 0
    two = LlavaInstructions(json_paths=[path], image_root=tmp_path, formatter=fmt, resolution=size, batch_size=1)
    assert {two.ids(0, 0, r, 3)[0] for r in range(3)} == {"hopper-1", "7", "text-only"}  # ranks: disjoint


def test_llava_errors_name_file_and_record(tmp_path, smoke_model):
    _, _, fmt = smoke_model
    path = llava_file(tmp_path, llava_records())
    missing = r"2 image\(s\) not found: .*instruct\.json: record id=hopper-1: .*grace_hopper"
    with pytest.raises(LlavaError, match=missing):
        LlavaInstructions(json_paths=[path], image_root=tmp_path, formatter=fmt, resolution=32, batch_size=2)
    lazy = LlavaInstructions(json_paths=[path], image_root=tmp_path, formatter=fmt, resolution=32, batch_size=3,
                             check_images=False)
    with pytest.raises(LlavaError, match=r"instruct\.json: record id=(hopper-1|7): image not found"):
        lazy.batch(0, 0, 0, 1)
    (tmp_path / "turns.json").write_text(json.dumps([{"id": "x", "conversations": [
        {"from": "human", "value": "a"}, {"from": "human", "value": "b"}]}]))
    with pytest.raises(FormatError, match=r"turns\.json, line 1: conversations\[1\]\['from'\] must be 'gpt'"):
        read_llava_records(tmp_path / "turns.json")
    (tmp_path / "bad.json").write_text('{"id": 1}')
    with pytest.raises(FormatError, match="bad.json, line 1: expected a JSON list"):
        read_llava_records(tmp_path / "bad.json")


def test_sources_from_paper_config(shard_dir, tmp_path, smoke_model):
    _, _, fmt = smoke_model
    cfg = load("params/paper.yaml", "ours", data={"pair_shards": [str(shard_dir / "{00000..00001}.tar")],
                                                   "noisy_pair_shards": [str(shard_dir / "00003.tar")],
                                                   "instruct_json": [str(llava_file(tmp_path, llava_records()[2:]))],
                                                   "image_root": str(tmp_path)})
    low = ShardPairs.from_config(cfg, "pretrain_low", formatter=fmt)
    assert (low.resolution, low.batch_size, len(low.paths)) == (224, 64, 2)
    cfg.pretrain_high.captions = "clean+noisy"
    high = ShardPairs.from_config(cfg, "pretrain_high", formatter=fmt)
    assert (high.resolution, high.batch_size, len(high.paths)) == (420, 32, 3)
    instruct = LlavaInstructions.from_config(cfg, formatter=fmt)
    assert (instruct.resolution, instruct.batch_size, [r.id for r in instruct.records]) == (420, 32, ["text-only"])
