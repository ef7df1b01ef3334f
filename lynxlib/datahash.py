"""Data fingerprints for the study manifest: which bytes a study's runs were trained and scored on.

A study's config keys say which *settings* produced a run; these hashes say which *data*. For the
synthetic world every stored file is hashed (sha256; ~1 GB at tiny, a few seconds), and the hashes
are cached beside the world keyed by each file's size and mtime, so a later manifest rehashes only
what changed. For user data (paper scale: shards and instruction JSON of any size) each path gets its
size and mtime, and a sha256 when it is under ``max_hash_bytes``: hashing terabytes of shards to
write a manifest would cost more than the study.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lynxlib.runs import atomic_write_text

CACHE_NAME = "file_hashes.json"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def folder_hashes(folder: str | Path, files: list[str] | None = None) -> dict:
    """{"sha256": one hash over every file's name and hash, "files": {relative path: sha256}}.

    ``files``: the relative paths to hash (a world's manifest lists its data files); default: all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such data folder to hash")
    if files is None:
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != CACHE_NAME]
    cache_path = folder / CACHE_NAME
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    hashes, fresh = {}, {}
    for rel in sorted(files):
        path, cached = folder / rel, cache.get(rel)
        key = _stat_key(path)
        hashes[rel] = cached["sha256"] if cached and cached["stat"] == key else file_sha256(path)
        fresh[rel] = {"stat": key, "sha256": hashes[rel]}
    if fresh != cache:
        atomic_write_text(cache_path, json.dumps(fresh, indent=0, sort_keys=True))
    combined = hashlib.sha256("".join(f"{rel}\0{sha}\n" for rel, sha in hashes.items()).encode()).hexdigest()
    return {"sha256": combined, "files": hashes}


def world_hashes(world_dir: str | Path) -> dict:
    """``folder_hashes`` over the data files a stored world's manifest lists."""
    manifest = Path(world_dir) / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no stored world here (run 00_world first)")
    return folder_hashes(world_dir, json.loads(manifest.read_text())["files"])


def path_fingerprints(paths: list[str], max_hash_bytes: int = 256 << 20) -> list[dict]:
    """Size, mtime and (for files under ``max_hash_bytes``) sha256 of user data paths; missing ones say so."""
    out = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            out.append({"path": raw, "missing": True})
            continue
        key = _stat_key(path)
        entry = {"path": raw, "size": key[0], "mtime_ns": key[1]}
        if path.is_file() and key[0] <= max_hash_bytes:
            entry["sha256"] = file_sha256(path)
        out.append(entry)
    return out
