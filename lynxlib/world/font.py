"""A hand-coded 5x7 pixel font and a nearest-template letter reader.

The font is the world's only text renderer, so the OCR category's difficulty is set here: words are
drawn with one *font pixel* equal to 1/128 of the image width (:data:`FONT_GRID`). At 128 px a font
pixel is one image pixel and every stroke is resolved; at 64 px a stroke is half a pixel wide, area
averaging blends it with its neighbours, and the letters are gone.

:func:`read_word` measures exactly that: it resamples the word's box to the font grid, binarises it
and matches each letter to the nearest glyph bitmap (Hamming distance). It reads strokes, as a person
would; it does not model the renderer, so it is a legibility probe, not an ideal observer.
"""
from __future__ import annotations

import numpy as np

GLYPH_W, GLYPH_H, SPACING = 3, 5, 1
FONT_GRID = 128  # one font pixel = 1/FONT_GRID of the image side

_GLYPH_ROWS: dict[str, str] = {
    "a": ".#. #.# ### #.# #.#", "b": "##. #.# ##. #.# ##.", "c": ".## #.. #.. #.. .##",
    "d": "##. #.# #.# #.# ##.", "e": "### #.. ##. #.. ###", "f": "### #.. ##. #.. #..",
    "g": ".## #.. #.# #.# .##", "h": "#.# #.# ### #.# #.#", "i": "### .#. .#. .#. ###",
    "j": "..# ..# ..# #.# .#.", "k": "#.# #.# ##. #.# #.#", "l": "#.. #.. #.. #.. ###",
    "m": "#.# ### #.# #.# #.#", "n": "##. #.# #.# #.# #.#", "o": "### #.# #.# #.# ###",
    "p": "##. #.# ##. #.. #..", "q": ".#. #.# #.# ##. .##", "r": "##. #.# ##. #.# #.#",
    "s": ".## #.. .#. ..# ##.", "t": "### .#. .#. .#. .#.", "u": "#.# #.# #.# #.# ###",
    "v": "#.# #.# #.# #.# .#.", "w": "#.# #.# #.# ### #.#", "x": "#.# #.# .#. #.# #.#",
    "y": "#.# #.# .#. .#. .#.", "z": "### ..# .#. #.. ###",
}


def _bitmap(rows: str) -> np.ndarray:
    grid = np.array([[ch == "#" for ch in row] for row in rows.split()], dtype=bool)
    assert grid.shape == (GLYPH_H, GLYPH_W), rows
    return grid


GLYPHS: dict[str, np.ndarray] = {ch: _bitmap(rows) for ch, rows in _GLYPH_ROWS.items()}


def word_bitmap(word: str) -> np.ndarray:
    """The word as a bool bitmap of shape (GLYPH_H, n * (GLYPH_W + SPACING) - SPACING)."""
    n = len(word)
    out = np.zeros((GLYPH_H, n * (GLYPH_W + SPACING) - SPACING), dtype=bool)
    for i, ch in enumerate(word.lower()):
        if ch not in GLYPHS:
            raise ValueError(f"no glyph for {ch!r} in {word!r}")
        x = i * (GLYPH_W + SPACING)
        out[:, x: x + GLYPH_W] = GLYPHS[ch]
    return out


def word_size(word: str) -> tuple[int, int]:
    """(height, width) of the word in font pixels."""
    return GLYPH_H, len(word) * (GLYPH_W + SPACING) - SPACING


def _area_weights(lo: float, hi: float, n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights averaging source pixels [lo, hi) into n_out equal bins (pixel units)."""
    edges = np.linspace(lo, hi, n_out + 1)
    left, right = np.arange(n_in, dtype=float), np.arange(1, n_in + 1, dtype=float)
    overlap = np.clip(np.minimum(edges[1:, None], right) - np.maximum(edges[:-1, None], left), 0, None)
    return overlap / overlap.sum(1, keepdims=True).clip(1e-9)


def resample_box(gray: np.ndarray, box: tuple[float, float, float, float], out_h: int, out_w: int) -> np.ndarray:
    """Area-average ``gray`` (H, W) over ``box`` = (x0, y0, x1, y1) in [0, 1] image units to (out_h, out_w)."""
    h, w = gray.shape
    x0, y0, x1, y1 = box
    wy = _area_weights(y0 * h, y1 * h, out_h, h)
    wx = _area_weights(x0 * w, x1 * w, out_w, w)
    return wy @ gray.astype(float) @ wx.T


def read_word(image: np.ndarray, box: tuple[float, float, float, float], n_letters: int,
              alphabet: str | None = None) -> str:
    """Read ``n_letters`` dark letters inside ``box`` (normalised x0, y0, x1, y1) of ``image`` (H, W, 3).

    The box is resampled to the font grid, binarised at the midpoint of its grey range, and each
    letter cell matched to the nearest glyph of ``alphabet`` (default: all glyphs) by Hamming distance.
    """
    letters = sorted(alphabet or GLYPHS)
    gh, gw = GLYPH_H, n_letters * (GLYPH_W + SPACING) - SPACING
    grid = resample_box(image.astype(float).mean(-1), box, gh, gw)
    ink = grid < (grid.min() + grid.max()) / 2
    templates = np.stack([GLYPHS[ch] for ch in letters])  # (L, 7, 5)
    out = []
    for i in range(n_letters):
        cell = ink[:, i * (GLYPH_W + SPACING): i * (GLYPH_W + SPACING) + GLYPH_W]
        dist = (templates != cell[None]).sum((1, 2))
        out.append(letters[int(dist.argmin())])
    return "".join(out)


def match_word(image: np.ndarray, box: tuple[float, float, float, float], candidates: tuple[str, ...]) -> str:
    """Closed-set reading: the candidate whose bitmap is nearest (Hamming) to the binarised box."""
    gh, gw = word_size(candidates[0])
    grid = resample_box(image.astype(float).mean(-1), box, gh, gw)
    ink = grid < (grid.min() + grid.max()) / 2
    dist = [(word_bitmap(w) != ink).sum() for w in candidates]
    return candidates[int(np.argmin(dist))]
