"""Helpers for the shard and batch-source tests: real images that ship with matplotlib (a JPEG
photograph, an RGBA logo, an RGBA icon) and raw tar members for malformed shards."""
import io
import tarfile
from pathlib import Path

import numpy as np
from matplotlib.cbook import get_sample_data

from lynxlib.images import decode_image
from lynxlib.shards import Pair

SAMPLES = ("grace_hopper.jpg", "logo2.png", "Minduka_Present_Blue_Pack.png")
CAPTIONS = ("Grace Hopper in uniform, a portrait.", "the matplotlib logo — blue and grey ✓",
            "a small present wrapped in blue paper")


def sample_bytes(name: str) -> bytes:
    return Path(get_sample_data(name, asfileobj=False)).read_bytes()


def load_real_images() -> dict[str, np.ndarray]:
    return {name: decode_image(sample_bytes(name)) for name in SAMPLES}


def real_pairs(real_images, prefix: str = "") -> list[Pair]:
    return [Pair(key=f"{prefix}{i:06d}", image=real_images[n], caption=c, meta={"source": n})
            for i, (n, c) in enumerate(zip(SAMPLES, CAPTIONS))]


def raw_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
