"""Numpy rasteriser: scene graph -> uint8 image, rendered once on a fine canvas and area-downsampled.

Geometry is in image units ([0, 1] per side), so a scene looks the same at every resolution except for
detail: the canvas side is a common multiple of every requested size and of ``2 * FONT_GRID``, and
each output is an exact area average of it. Letters are drawn with one font pixel = 1/128 of the
side: crisp at 128 px, half-pixel strokes (illegible) at 64 px.

Sizes (grid 3): a large object spans 0.84 of a cell (18 px at 64 px, about two ViT patches of 8 px), a
small one 0.52 (11 px), a group item 0.36 of a cell (7.7 px, in its own quarter-cell slot).
"""
from __future__ import annotations

from math import lcm

import numpy as np

from lynxlib.world.font import FONT_GRID, read_word, word_bitmap, word_size
from lynxlib.world.scene import GROUP_SUBDIV, STEP, Obj, Scene, TextItem
from lynxlib.world.shapes import blend, draw_shape
from lynxlib.world.textures import paint_place

RADIUS = {"large": 0.42, "small": 0.26}   # object radius, in cells
GROUP_RADIUS = 0.18                       # group item radius, in cells
JITTER = 0.07                             # max centre offset, in cells
TRAIL = ((0.3, 0.45), (0.6, 0.28), (0.9, 0.14))  # (offset in cells, alpha) of the fading motion copies
INKS = ((22, 22, 22), (30, 32, 76), (78, 26, 26), (26, 60, 32))  # dark inks, one per scene
TEXT_JITTER = (3, 2)   # max word offset in font pixels (x, y): varies the low-resolution pixel phase

# Text carriers, in font pixels: (width, height) of the body, the light label the word sits on
# (None: the body itself), and colours. Words are 11 x 5 font pixels (3 letters).
CARRIERS = {
    "sign": {"body": (17, 11), "label": None, "fill": (226, 220, 196), "frame": (70, 56, 44)},
    "cover": {"body": (19, 25), "label": (15, 9), "fill": (226, 222, 206), "frame": (120, 58, 54)},
    "poster": {"body": (19, 17), "label": (17, 9), "fill": (238, 236, 228), "frame": (150, 112, 80)},
}
COVER_SHIFT = 5  # the label sits this many font pixels above a book cover's centre


def canvas_size(sizes: tuple[int, ...]) -> int:
    """Smallest canvas side that every size divides and that has >= 2 canvas pixels per font pixel."""
    side = 2 * FONT_GRID
    for s in sizes:
        if s <= 0:
            raise ValueError(f"image size must be positive, got {s}")
        side = lcm(side, s)
    return side


def _halve(img: np.ndarray) -> np.ndarray:
    return 0.25 * (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2])


def _area(img: np.ndarray, size: int) -> np.ndarray:
    """Exact area average of a float (C, C, 3) image to (size, size, 3); C divisible by size."""
    f = img.shape[0] // size
    while f % 2 == 0:
        img, f = _halve(img), f // 2
    return img if f == 1 else img.reshape(size, f, size, f, 3).mean(axis=(1, 3))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def downsample(canvas: np.ndarray, size: int) -> np.ndarray:
    """Exact area average of a (C, C, 3) float canvas to (size, size, 3) uint8 (C divisible by size)."""
    return _to_uint8(_area(canvas, size))


def downsample_sizes(canvas: np.ndarray, sizes: tuple[int, ...]) -> dict[int, np.ndarray]:
    """{size: uint8 image}, each size averaged from the smallest finer level it divides (a pyramid)."""
    levels, out = [canvas], {}
    for size in sorted(set(sizes), reverse=True):
        base = min((lv for lv in levels if lv.shape[0] % size == 0), key=lambda lv: lv.shape[0])
        level = _area(base, size)
        levels.append(level)
        out[size] = _to_uint8(level)
    return out


def cell_centre(row: float, col: float, grid: int) -> tuple[float, float]:
    """(x, y) image units of a grid cell's centre."""
    return (col + 0.5) / grid, (row + 0.5) / grid


def object_centres(scene: Scene) -> list[tuple[float, float]]:
    """Jittered (x, y) centre of each object, from ``scene.seed`` and the object's cell only (so an
    object stays put when other objects are added or removed)."""
    out = []
    for obj in scene.objects:
        jx, jy = np.random.default_rng([scene.seed, 1, obj.row, obj.col]).uniform(-JITTER, JITTER, size=2)
        out.append(cell_centre(obj.row + jy, obj.col + jx, scene.grid))
    return out


def text_box(scene: Scene) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the word's ink box in image units, aligned to the font grid."""
    if scene.text is None:
        raise ValueError("scene has no text")
    h, w = word_size(scene.text.word)
    cx, cy = cell_centre(scene.text.row, scene.text.col, scene.grid)
    if scene.text.kind == "cover":  # the label sits in the upper part of a book cover
        cy -= COVER_SHIFT / FONT_GRID
    jx, jy = np.random.default_rng([scene.seed, 2]).integers(-np.array(TEXT_JITTER), np.array(TEXT_JITTER) + 1)
    x0, y0 = round(cx * FONT_GRID - w / 2) + int(jx), round(cy * FONT_GRID - h / 2) + int(jy)
    return x0 / FONT_GRID, y0 / FONT_GRID, (x0 + w) / FONT_GRID, (y0 + h) / FONT_GRID


def _rect(img: np.ndarray, box_fp: tuple[int, int, int, int], rgb) -> None:
    """Fill a rectangle given in font pixels (x0, y0, x1, y1)."""
    k = img.shape[0] // FONT_GRID
    x0, y0, x1, y1 = (max(v, 0) * k for v in box_fp)
    img[y0:y1, x0:x1] = rgb


def _carrier_box(kind: str, wx: float, wy: float) -> tuple[int, int, int, int]:
    """Body of the carrier in font pixels around the word centre (wx, wy); covers extend downwards."""
    bw, bh = CARRIERS[kind]["body"]
    top = wy + COVER_SHIFT - bh / 2 if kind == "cover" else wy - bh / 2
    return round(wx - bw / 2), round(top), round(wx - bw / 2) + bw, round(top) + bh


def draw_text(img: np.ndarray, scene: Scene) -> None:
    """Draw the scene's carrier (sign, cover, poster) and its word in ink, aligned to the font grid."""
    text: TextItem = scene.text
    spec = CARRIERS[text.kind]
    x0, y0, x1, y1 = (round(v * FONT_GRID) for v in text_box(scene))
    wx, wy = (x0 + x1) / 2, (y0 + y1) / 2
    body = _carrier_box(text.kind, wx, wy)
    if text.kind == "sign":  # a post below the panel
        _rect(img, (round(wx) - 1, body[3], round(wx) + 1, body[3] + 7), (96, 76, 56))
    _rect(img, body, spec["frame"])
    inner = (body[0] + 1, body[1] + 1, body[2] - 1, body[3] - 1)
    if spec["label"]:
        lw, lh = spec["label"]
        inner = (round(wx - lw / 2), round(wy - lh / 2), round(wx - lw / 2) + lw, round(wy - lh / 2) + lh)
    _rect(img, inner, spec["fill"])
    k = img.shape[0] // FONT_GRID
    ink = np.kron(word_bitmap(text.word), np.ones((k, k), dtype=bool))
    region = (slice(y0 * k, y0 * k + ink.shape[0]), slice(x0 * k, x0 * k + ink.shape[1]))
    colour = INKS[scene.seed % len(INKS)]
    blend(img, region, ink, colour, 1.0)


def draw_group(img: np.ndarray, scene: Scene) -> None:
    fine = scene.grid * GROUP_SUBDIV
    r = GROUP_RADIUS / scene.grid
    for row, col in scene.group.slots:
        cx, cy = (col + 0.5) / fine, (row + 0.5) / fine
        draw_shape(img, shape=scene.group.shape, colour=scene.group.colour, cx=cx, cy=cy, r=r)


def draw_object(img: np.ndarray, obj: Obj, centre: tuple[float, float], grid: int) -> None:
    """An object, preceded by its motion trail: fading copies behind it (opposite to ``motion``)."""
    r = RADIUS[obj.size] / grid
    cx, cy = centre
    if obj.motion:
        dr, dc = STEP[obj.motion]
        for offset, alpha in TRAIL[::-1]:
            draw_shape(img, shape=obj.shape, colour=obj.colour, cx=cx - dc * offset / grid,
                       cy=cy - dr * offset / grid, r=r, alpha=alpha, outline=False)
    draw_shape(img, shape=obj.shape, colour=obj.colour, cx=cx, cy=cy, r=r)


def paint_scene(scene: Scene, side: int) -> np.ndarray:
    """The scene on a float32 (side, side, 3) canvas; side must be a multiple of FONT_GRID."""
    img = paint_place(scene.place, side, np.random.default_rng([scene.seed, 0]))
    if scene.text is not None:
        draw_text(img, scene)
    if scene.group is not None:
        draw_group(img, scene)
    for obj, centre in zip(scene.objects, object_centres(scene)):
        draw_object(img, obj, centre, scene.grid)
    return img


def render_scene_sizes(scene: Scene, sizes: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Render once and area-downsample to each size: {size: (size, size, 3) uint8}."""
    return downsample_sizes(paint_scene(scene, canvas_size(tuple(sizes))), tuple(sizes))


def render_scene(scene: Scene, size: int) -> np.ndarray:
    """The scene as a (size, size, 3) uint8 image."""
    return render_scene_sizes(scene, (size,))[size]



def reader_accuracy(scenes, images: np.ndarray, alphabet: str | None = None) -> float:
    """Share of letters :func:`~lynxlib.world.font.read_word` gets right over the scenes that carry a word.

    ``images`` (N, H, W, 3) are the renders of ``scenes`` at one resolution.
    """
    hits = total = 0
    for scene, image in zip(scenes, images):
        if scene.text is None:
            continue
        read = read_word(np.asarray(image), text_box(scene), len(scene.text.word), alphabet)
        hits += sum(a == b for a, b in zip(read, scene.text.word))
        total += len(scene.text.word)
    if not total:
        raise ValueError("no scene carries a word")
    return hits / total
