"""Shape silhouettes as vectorised masks, and alpha-blended drawing on a float canvas.

Masks are defined in unit coordinates (u, v) in [-1, 1]^2 with v pointing down; a shape of radius
``r`` at centre (cx, cy) covers the pixels whose (u, v) = ((x - cx) / r, (y - cy) / r) fall inside it.
Every shape is outlined (dark on light fills, light on dark ones) so it stands out from any texture.
"""
from __future__ import annotations

import numpy as np

from lynxlib.world.vocab import COLOURS

OUTLINE = 0.012   # outline width, in image-side units (0.8 px at 64 px, 1.5 px at 128 px)
DARK, LIGHT = (28.0, 28.0, 28.0), (236.0, 236.0, 236.0)


def _convex(u: np.ndarray, v: np.ndarray, pts: list[tuple[float, float]]) -> np.ndarray:
    """Inside a convex polygon given counter-clockwise in (u, v) with v down (clockwise on screen)."""
    inside = np.ones(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
    return inside


def _star(u: np.ndarray, v: np.ndarray, inner: float = 0.45, points: int = 5) -> np.ndarray:
    """A regular star: in each sector the boundary is the straight edge from a tip to an inner vertex."""
    rho = np.hypot(u, v)
    sector = 2 * np.pi / points
    theta = np.mod(np.arctan2(u, -v), sector)            # 0 at a tip (the top tip points up)
    psi = np.minimum(theta, sector - theta)              # 0 at a tip, sector/2 at an inner vertex
    tip = np.array([1.0, 0.0])
    inv = inner * np.array([np.cos(sector / 2), np.sin(sector / 2)])
    px, py = rho * np.cos(psi), rho * np.sin(psi)
    cross = (inv[0] - tip[0]) * (py - tip[1]) - (inv[1] - tip[1]) * (px - tip[0])
    return cross >= 0


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = u * 1.15, -(v * 1.15) + 0.2
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bool mask of ``shape`` over unit coordinates ``u, v`` (any equal shapes)."""
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u * u + v * v <= 1
    if shape == "square":
        return np.maximum(au, av) <= 0.84
    if shape == "triangle":
        return _convex(u, v, [(0.0, -0.95), (-1.0, 0.8), (1.0, 0.8)][::-1])
    if shape == "star":
        return _star(u, v)
    if shape == "cross":
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if shape == "diamond":
        return au + av <= 1
    if shape == "heart":
        return _heart(u, v)
    if shape == "ring":
        d2 = u * u + v * v
        return (d2 <= 1) & (d2 >= 0.5**2)
    raise ValueError(f"unknown shape {shape!r}")


def outline_colour(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return LIGHT if luminance < 70 else DARK


def _window(img: np.ndarray, cx: float, cy: float, r: float):
    """Pixel slices of the square around (cx, cy) with half-side r (image units), and its (u, v) grid."""
    size = img.shape[0]
    x0, x1 = max(int((cx - r) * size) - 1, 0), min(int((cx + r) * size) + 2, size)
    y0, y1 = max(int((cy - r) * size) - 1, 0), min(int((cy + r) * size) + 2, size)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    u = ((xs + 0.5) / size - cx) / r
    v = ((ys + 0.5) / size - cy) / r
    return (slice(y0, y1), slice(x0, x1)), u, v


def blend(img: np.ndarray, where: tuple[slice, slice], mask: np.ndarray, rgb, alpha: float) -> None:
    """img[where][mask] = (1 - alpha) * img + alpha * rgb, in place."""
    if alpha <= 0 or not mask.any():
        return
    region = img[where]
    region[mask] = (1 - alpha) * region[mask] + alpha * np.asarray(rgb, dtype=np.float32)


def draw_shape(img: np.ndarray, *, shape: str, colour: str, cx: float, cy: float, r: float,
               alpha: float = 1.0, outline: bool = True) -> None:
    """Draw an outlined ``shape`` of radius ``r`` at (cx, cy) (image units in [0, 1]) on img (C, C, 3)."""
    rgb = COLOURS[colour]
    big = r + (OUTLINE if outline else 0.0)
    where, u, v = _window(img, cx, cy, big)       # u, v in units of the outlined radius
    if outline:
        blend(img, where, shape_mask(shape, u, v), outline_colour(rgb), alpha)
    blend(img, where, shape_mask(shape, u * big / r, v * big / r), rgb, alpha)
