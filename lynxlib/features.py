"""Frozen-feature cache: the vision tower's tokens per image (and per video frame), computed once.

The tower never changes after stage 0, so encoding every image again in every step of every stage
and variant is wasted work. The cache stores ``(N, F, T, Dv)`` float32 arrays (exactly what the tower
returns, so cached and uncached runs see the same numbers) under a folder keyed by the tower's
checkpoint hash, its feature layer and the resolution; training and evaluation memory-map them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lynxlib.runs import atomic_path, file_lock, read_json, show_progress, write_json
from lynxlib.vision import VisionTower, to_pixel_values


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]


def cache_key(*, tower_checkpoint: str | Path, feature_layer: int, resolution: int) -> str:
    return f"{file_hash(tower_checkpoint)}-L{feature_layer}-{resolution}px"


@torch.no_grad()
def encode_array(tower: VisionTower, frames: np.ndarray, *, batch_size: int = 64, desc: str = "encode") -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` images or ``(N, F, H, W, 3)`` clips -> float32 tokens ``(N, F, T, Dv)``."""
    clips = frames[:, None] if frames.ndim == 4 else frames
    n, f, h = clips.shape[0], clips.shape[1], clips.shape[2]
    tower.set_resolution(h)
    tokens = np.empty((n, f, tower.num_tokens(h), tower.width), dtype=np.float32)
    for start in tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=not show_progress()):
        batch = to_pixel_values(np.asarray(clips[start:start + batch_size]))
        tokens[start:start + batch_size] = tower.encode_frames(batch).float().numpy()
    return tokens


class FeatureCache:
    """Cached tower tokens for named arrays (e.g. ``train_images``), one folder per cache key."""

    def __init__(self, root: str | Path, key: str):
        self.folder = Path(root) / key
        self._arrays: dict[str, np.ndarray] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.npy"

    def has(self, name: str) -> bool:
        meta = self.folder / f"{name}.json"
        return meta.exists() and self.path(name).exists()

    def ensure(self, name: str, tower: VisionTower, frames: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Encode ``frames`` once (under a lock, so parallel runs share the work); memmap thereafter."""
        return self.store(name, lambda: encode_array(tower, frames, batch_size=batch_size, desc=f"cache {name}"))

    def store(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Write ``compute()`` as ``name`` unless it is there (under a lock, atomically); memmap it."""
        with file_lock(self.folder / f".{name}.lock"):
            if not self.has(name):
                tokens = compute()
                with atomic_path(self.path(name)) as tmp:
                    with tmp.open("wb") as handle:
                        np.save(handle, tokens)
                write_json(self.folder / f"{name}.json", {"shape": list(tokens.shape), "dtype": "float32"})
        return self.load(name)

    def load(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            if not self.has(name):
                raise FileNotFoundError(f"feature cache {self.folder} has no {name!r} (run ensure first)")
            array = np.load(self.path(name), mmap_mode="r")
            expected = tuple(read_json(self.folder / f"{name}.json")["shape"])
            if array.shape != expected:
                raise ValueError(f"{self.path(name)}: shape {array.shape} != recorded {expected} (partial write?)")
            self._arrays[name] = array
        return self._arrays[name]

    def tokens(self, name: str, indices) -> torch.Tensor:
        """Rows ``indices`` of a cached array as a float32 tensor ``(B, F, T, Dv)``."""
        array = self.load(name)
        order = np.asarray(indices)
        return torch.from_numpy(np.ascontiguousarray(array[order]))
