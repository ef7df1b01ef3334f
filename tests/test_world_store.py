"""The world on disk: round trip, reuse by config hash, regeneration after an incomplete write."""
import hashlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from lynxlib.config import config_hash, load
from lynxlib.formats import read_mme_questions
from lynxlib.world import WorldStore, render_clip, render_scene, sample_scene, stream_rng, write_world
from lynxlib.world.store import is_complete


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg = replace(load("params/smoke.yaml").world, eval_scenes=12, eval_clips=3)
    root = tmp_path_factory.mktemp("world")
    manifest = write_world(cfg, root, progress=False)
    return cfg, root, manifest


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_counts_and_arrays(world):
    cfg, root, manifest = world
    assert manifest["config_hash"] == config_hash(cfg)
    counts = manifest["counts"]
    assert counts["train_scenes"] == cfg.train_scenes and counts["train_clips"] == cfg.train_clips
    assert counts["captions_noisy"] >= cfg.noisy_multiplier * counts["captions_clean"] == 5 * cfg.train_scenes
    assert counts["corpus"] == cfg.text_corpus and counts["text_instructions"] == cfg.text_instructions
    store = WorldStore(root)
    high = store.images("train", "high")
    assert isinstance(high, np.memmap) and high.shape == (cfg.train_scenes, 128, 128, 3) and high.dtype == np.uint8
    assert store.images("train", 64).shape == (cfg.train_scenes, 64, 64, 3)
    assert store.videos("eval", "low").shape == (cfg.eval_clips, cfg.frames, 64, 64, 3)
    with pytest.raises(ValueError, match="resolution"):
        store.images("train", 100)


def test_store_round_trip_equals_regeneration(world):
    cfg, root, _ = world
    store = WorldStore(root)
    scenes = store.scenes("train")
    assert scenes[:5] == [sample_scene(stream_rng(cfg.seed, "train-scene", i), cfg) for i in range(5)]
    for i in (0, len(scenes) - 1):
        assert np.array_equal(store.images("train", "high")[i], render_scene(scenes[i], 128))
        assert np.array_equal(store.images("train", "low")[i], render_scene(scenes[i], 64))
    clip = store.clips("train")[0]
    assert np.array_equal(store.videos("train", "high")[0], render_clip(clip, 128))
    assert [i for i, _ in store.captions("clean")] == list(range(cfg.train_scenes))
    assert len(store.text_instructions()) == cfg.text_instructions and len(store.corpus()) == cfg.text_corpus


def test_eval_files_on_disk(world):
    cfg, root, _ = world
    store = WorldStore(root)
    records = store.open_vqa("image")
    png = np.asarray(Image.open(root / "open_vqa_mini" / records[0]["image"]).convert("RGB"))
    assert np.array_equal(png, store.images("open_vqa_mini", "high")[0])
    gif = Image.open(root / "open_vqa_mini" / store.open_vqa("video")[0]["video"])
    assert gif.n_frames == cfg.frames
    assert store.mme_subtasks() == sorted(["OCR", "color", "count", "existence", "position", "scene"])
    rows = read_mme_questions(root / "mme_mini" / "count.txt")
    assert len(rows) == 2 * cfg.mme_images_per_subtask and (root / "mme_mini" / "images" / rows[0].image).is_file()
    assert len(store.owleval()) == cfg.owleval_items


def test_reuse_and_regeneration(world):
    cfg, root, manifest = world
    images = root / "train" / "images_high.npy"
    before, mtime = digest(images), images.stat().st_mtime_ns
    assert write_world(cfg, root, progress=False) == manifest and images.stat().st_mtime_ns == mtime
    assert is_complete(root, replace(cfg, seed=1)) is None
    (root / "text" / "corpus.txt").unlink()  # an incomplete world is regenerated, byte-identical
    assert is_complete(root, cfg) is None
    assert write_world(cfg, root, progress=False) == manifest
    assert digest(images) == before and (root / "text" / "corpus.txt").is_file()


def test_missing_world_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        WorldStore(tmp_path)


def test_open_vqa_qtypes_replay_the_plan_and_catch_another_world(world, monkeypatch):
    from lynxlib.world.evalsets import open_vqa_plan

    cfg, root, _ = world
    store = WorldStore(root)
    for kind in ("image", "video"):
        qtypes = store.open_vqa_qtypes(kind)
        assert qtypes == [q for _, q, _ in open_vqa_plan(cfg, kind)] and len(qtypes) == len(store.open_vqa(kind))
    records = store.open_vqa("image")
    records[0] = {**records[0], "class": "OCR" if records[0]["class"] != "OCR" else "Others"}
    monkeypatch.setattr(store, "open_vqa", lambda kind="image": records)
    with pytest.raises(ValueError, match="record 0 is"):
        store.open_vqa_qtypes("image")
    monkeypatch.setattr(store, "open_vqa", lambda kind="image": records[1:])
    with pytest.raises(ValueError, match="config plans"):
        store.open_vqa_qtypes("image")
