"""Run directories, seeding, atomic writes, environment manifest, metrics logs.

Layout: ``outputs/<scale>/<variant>/seed<k>/<stage>/`` holding ``config.yaml`` (resolved),
``env.json``, ``metrics.jsonl``, ``summary.json``, ``ckpt/`` and ``figures/``.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np

PACKAGES = ("torch", "transformers", "accelerate", "deepspeed", "open_clip_torch", "timm", "numpy", "papermill")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it.

    Nothing half-written ever replaces a good file: the rename is atomic on POSIX.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA); make CPU kernels deterministic where torch can."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads (0 keeps the default). Two single-threaded runs share 2 cores."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


def git_commit(root: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def env_info() -> dict[str, Any]:
    """What a reader needs to rerun this: commit, versions, machine. No keys or tokens."""
    import torch

    return {
        "git_commit": git_commit(Path(__file__).resolve().parent.parent),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": package_versions(),
    }


def stage_dir(root: str | Path, scale: str, variant: str, seed: int, stage: str) -> Path:
    return Path(root) / scale / variant / f"seed{seed}" / stage


class MetricsLog:
    """Append-only ``metrics.jsonl``: one json object a line, flushed per write."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: Any) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True, default=float) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``params/``; else cwd.

    Notebooks run with their own folder as cwd (nbval, JupyterLab) or the repo root (papermill from
    the shell): paths like ``params/smoke.yaml`` resolve the same from both.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "lynxlib").is_dir():
            return folder
    return here


def resolve(path: str | Path) -> Path:
    """Absolute path: as given if it exists from cwd or is absolute, else relative to the project root."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path.resolve()
    return project_root() / path


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) so two runs never compute one shared artifact at once."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def show_progress(wanted: bool = True) -> bool:
    """Progress bars are on unless asked off or ``TQDM_DISABLE`` is set (nbval and CI set it, so the
    executed notebooks hold no timing-dependent bars)."""
    return wanted and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")
