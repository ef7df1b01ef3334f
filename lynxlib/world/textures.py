"""Place backgrounds: one muted colour family and one pattern per place, so places differ at 64 px.

Each painter takes the canvas side ``size`` (pixels) and a generator (the scene's seed: phase and dot
positions vary, the look does not) and returns a float32 (size, size, 3) image in [0, 255]. Colours
stay muted (low saturation, mid luminance) so no background is mistaken for an object colour.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

Painter = Callable[[int, np.random.Generator], np.ndarray]


@lru_cache(maxsize=8)
def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) in image units, each (size, size) float32 (read-only, cached)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (x + 0.5) / size, (y + 0.5) / size
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _fill(size: int, rgb) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.float32), (size, size, 3)).copy()


def _dots(img: np.ndarray, rng: np.random.Generator, *, n: int, radius: tuple[float, float], rgb,
          region: np.ndarray | None = None) -> None:
    """Paint ``n`` discs of random radius in ``radius`` (image units) at random centres."""
    size = img.shape[0]
    x, y = _coords(size)
    for _ in range(n):
        cx, cy, r = rng.random(), rng.random(), rng.uniform(*radius)
        y0, y1 = max(int((cy - r) * size), 0), min(int((cy + r) * size) + 1, size)
        x0, x1 = max(int((cx - r) * size), 0), min(int((cx + r) * size) + 1, size)
        mask = (x[y0:y1, x0:x1] - cx) ** 2 + (y[y0:y1, x0:x1] - cy) ** 2 <= r * r
        if region is not None:
            mask &= region[y0:y1, x0:x1]
        img[y0:y1, x0:x1][mask] = rgb


def beach(size: int, rng: np.random.Generator) -> np.ndarray:
    """Sand below, a band of water with light wave stripes above."""
    x, y = _coords(size)
    phase = rng.random()
    img = _fill(size, (198, 184, 148))
    _dots(img, rng, n=40, radius=(0.004, 0.01), rgb=(170, 156, 122))
    water = y < 0.3 + 0.025 * np.sin(2 * np.pi * (2 * x + phase))
    img[water] = (110, 138, 156)
    waves = water & (np.sin(2 * np.pi * (14 * y + 0.4 * np.sin(2 * np.pi * (3 * x + phase)))) > 0.55)
    img[waves] = (146, 170, 182)
    return img


def forest(size: int, rng: np.random.Generator) -> np.ndarray:
    """Dark green ground covered with tree crowns (darker and lighter discs)."""
    img = _fill(size, (64, 86, 60))
    _dots(img, rng, n=28, radius=(0.035, 0.07), rgb=(46, 66, 46))
    _dots(img, rng, n=18, radius=(0.02, 0.04), rgb=(82, 106, 72))
    return img


def kitchen(size: int, rng: np.random.Generator) -> np.ndarray:
    """A tile checkerboard with grout lines."""
    x, y = _coords(size)
    off = rng.random(2) / 8
    tx, ty = (x + off[0]) * 8, (y + off[1]) * 8
    img = np.where(((np.floor(tx) + np.floor(ty)) % 2 == 0)[..., None], np.float32([188, 180, 166]),
                   np.float32([150, 144, 136])).astype(np.float32)
    grout = (np.abs(tx - np.round(tx)) < 0.05) | (np.abs(ty - np.round(ty)) < 0.05)
    img[grout] = (120, 116, 110)
    return img


def street(size: int, rng: np.random.Generator) -> np.ndarray:
    """Asphalt with dashed lane lines and kerbs at the top and bottom."""
    x, y = _coords(size)
    phase = rng.random()
    img = _fill(size, (92, 92, 96))
    for lane in (1 / 3, 2 / 3):
        dash = (np.abs(y - lane) < 0.012) & (np.mod(x * 5 + phase, 1) < 0.55)
        img[dash] = (178, 174, 150)
    img[(y < 0.06) | (y > 0.94)] = (132, 130, 128)
    return img


def desert(size: int, rng: np.random.Generator) -> np.ndarray:
    """Tan sand in wavy diagonal dune bands."""
    x, y = _coords(size)
    phase = rng.random()
    img = _fill(size, (196, 166, 122))
    bands = np.sin(2 * np.pi * (5 * (x + y) + phase + 0.12 * np.sin(2 * np.pi * 3 * x))) > 0.45
    img[bands] = (172, 142, 104)
    return img


def snowfield(size: int, rng: np.random.Generator) -> np.ndarray:
    """Pale blue-grey snow with drifts (long ellipses) and speckles."""
    x, y = _coords(size)
    phase = rng.random()
    img = _fill(size, (204, 209, 218))
    drifts = np.sin(2 * np.pi * (3 * y + 0.3 * np.sin(2 * np.pi * (x + phase)))) > 0.8
    img[drifts] = (184, 191, 205)
    _dots(img, rng, n=35, radius=(0.003, 0.008), rgb=(168, 176, 192))
    return img


def office(size: int, rng: np.random.Generator) -> np.ndarray:
    """Blue-grey carpet tiles: a square grid of thin lines."""
    x, y = _coords(size)
    off = rng.random(2) / 6
    img = _fill(size, (128, 134, 152))
    gx, gy = np.mod((x + off[0]) * 6, 1), np.mod((y + off[1]) * 6, 1)
    img[(gx < 0.07) | (gy < 0.07)] = (108, 114, 132)
    return img


def garden(size: int, rng: np.random.Generator) -> np.ndarray:
    """Green beds in vertical rows with sparse pale flowers."""
    x, y = _coords(size)
    phase = rng.random()
    img = _fill(size, (98, 126, 80))
    img[np.mod(x * 5 + phase, 1) < 0.3] = (78, 104, 62)
    _dots(img, rng, n=24, radius=(0.006, 0.012), rgb=(176, 168, 128))
    return img


def library(size: int, rng: np.random.Generator) -> np.ndarray:
    """Shelves of book spines: vertical stripes of muted browns between dark shelf boards."""
    x, y = _coords(size)
    spines = np.float32([[122, 84, 62], [100, 72, 58], [140, 104, 72], [112, 92, 84], [92, 80, 64]])
    edges = np.cumsum(rng.uniform(0.02, 0.05, size=60))
    idx = np.searchsorted(edges, x[0])
    row_shift = rng.integers(0, len(spines), size=3)
    shelf = np.minimum((y * 3).astype(int), 2)
    img = spines[(idx[None, :] + row_shift[shelf]) % len(spines)].astype(np.float32)
    img[np.mod(y * 3, 1) < 0.06] = (72, 54, 42)
    return img


def harbor(size: int, rng: np.random.Generator) -> np.ndarray:
    """Dark water with diagonal ripples above a wooden dock of planks."""
    x, y = _coords(size)
    phase = rng.random()
    img = _fill(size, (82, 104, 122))
    img[np.sin(2 * np.pi * (8 * (x - y) + phase)) > 0.7] = (104, 126, 142)
    dock = y > 0.76
    img[dock] = (124, 100, 76)
    img[dock & (np.mod(x * 10 + phase, 1) < 0.08)] = (92, 72, 54)
    return img


PAINTERS: dict[str, Painter] = {
    "beach": beach, "forest": forest, "kitchen": kitchen, "street": street, "desert": desert,
    "snowfield": snowfield, "office": office, "garden": garden, "library": library, "harbor": harbor,
}

# What each texture shows, in words (captions, the text corpus and OwlEval-mini scoring use these).
PLACE_FEATURES: dict[str, tuple[str, ...]] = {
    "beach": ("sand", "water", "waves"),
    "forest": ("trees", "green ground"),
    "kitchen": ("tiles", "a tiled floor"),
    "street": ("asphalt", "lane lines"),
    "desert": ("sand", "dunes"),
    "snowfield": ("snow", "drifts"),
    "office": ("carpet", "carpet tiles"),
    "garden": ("flower beds", "flowers"),
    "library": ("books", "shelves"),
    "harbor": ("water", "a dock"),
}


def paint_place(place: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """The background of ``place`` as float32 (size, size, 3)."""
    if place not in PAINTERS:
        raise ValueError(f"unknown place {place!r} (known: {', '.join(PAINTERS)})")
    return PAINTERS[place](size, rng)
