"""Data fingerprints in the study manifest: world files hashed (and the cache trusted only while a
file's size and mtime hold), user data paths fingerprinted, every run's entry naming its data."""
import json
import os

import pytest

from lynxlib import datahash, study
from lynxlib.config import load
from lynxlib.stages import artifact_dir


def fake_world(folder, files=None):
    files = files or {"train/images.npy": b"\x00" * 64, "text/corpus.txt": b"a world\n"}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / ".lock").write_text("")
    (folder / "manifest.json").write_text(json.dumps({"files": sorted(files)}))
    return folder


def test_world_hashes_cover_the_listed_files_and_see_a_changed_byte(tmp_path):
    world = fake_world(tmp_path / "w")
    first = datahash.world_hashes(world)
    assert sorted(first["files"]) == ["text/corpus.txt", "train/images.npy"]  # not .lock, not the cache
    assert first["files"]["text/corpus.txt"] == datahash.file_sha256(world / "text" / "corpus.txt")
    (world / "train" / "images.npy").write_bytes(b"\x00" * 63 + b"\x01")  # same size, new bytes and mtime
    os.utime(world / "train" / "images.npy", ns=(1, 1))
    second = datahash.world_hashes(world)
    assert second["files"]["text/corpus.txt"] == first["files"]["text/corpus.txt"]
    assert second["files"]["train/images.npy"] != first["files"]["train/images.npy"]
    assert second["sha256"] != first["sha256"]


def test_the_cache_spares_rehashing_unchanged_files(tmp_path, monkeypatch):
    world = fake_world(tmp_path / "w")
    expected = datahash.world_hashes(world)
    calls = []
    monkeypatch.setattr(datahash, "file_sha256", lambda path, chunk=0: calls.append(path) or "x")
    assert datahash.world_hashes(world) == expected and calls == []


def test_user_paths_are_fingerprinted_and_large_ones_not_hashed(tmp_path):
    small = tmp_path / "instruct.json"
    small.write_text("[]")
    got = datahash.path_fingerprints([str(small), str(tmp_path / "gone.tar")])
    assert got[0]["sha256"] == datahash.file_sha256(small) and got[0]["size"] == 2
    assert got[1] == {"path": str(tmp_path / "gone.tar"), "missing": True}
    assert "sha256" not in datahash.path_fingerprints([str(small)], max_hash_bytes=1)[0]
    with pytest.raises(FileNotFoundError, match="no stored world"):
        datahash.world_hashes(tmp_path)


def test_every_run_in_the_manifest_names_its_data(tmp_path):
    cfg = load("params/smoke.yaml", "ours")
    world = fake_world(artifact_dir(cfg, "world", tmp_path))
    jobs = study.plan("params/smoke.yaml", ["ours", "blind"], [0], str(tmp_path))
    result = {"status": {job.name: "done" for job in jobs}, "failed": {}, "wall_s": 1.0}
    manifest = json.loads(study.write_manifest(jobs, result, params="params/smoke.yaml",
                                               out_root=str(tmp_path)).read_text())
    expected = datahash.world_hashes(world)["sha256"]
    assert {run["data"]["sha256"] for run in manifest["runs"]} == {expected}
    assert manifest["world_files"][str(world)] == datahash.world_hashes(world)["files"]
