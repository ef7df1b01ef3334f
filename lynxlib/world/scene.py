"""Scene graphs: what a still image shows, as frozen dataclasses that round-trip through JSON.

A scene is a *place* (the background texture), 1..``max_objects`` objects on a ``grid x grid`` layout
(shape, colour, size, cell, optional motion trail), an optional rendered word (sign, cover, poster) and
an optional *countable group*: 1..``max_count`` identical small items on a finer ``2grid x 2grid``
layout of slots. The group's shape is never an object's shape, so "how many stars" has one answer:
``len(group.slots)``, exactly what is drawn. Every question and caption is computed from this graph.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.world.vocab import COLOURS, DIRECTIONS, PLACES, SHAPES, SIZES, TEXT_KINDS, WORDS

MOTION_PROB = 0.45     # share of scenes with one moving object (the still-image "Action" category)
GROUP_SUBDIV = 2       # each free grid cell holds 2 x 2 group slots
STEP = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}  # direction -> (drow, dcol)


@dataclass(frozen=True)
class WorldVocab:
    """The catalogue subsets one :class:`WorldConfig` uses (prefixes of the vocab lists)."""

    places: tuple[str, ...]
    shapes: tuple[str, ...]
    colours: tuple[str, ...]
    words: tuple[str, ...]
    grid: int
    max_objects: int
    max_count: int
    frames: int


@lru_cache(maxsize=32)
def _vocab(places: int, shapes: int, colours: int, word_length: int, grid: int, max_objects: int,
           max_count: int, frames: int) -> WorldVocab:
    words = tuple(w for w in WORDS if len(w) == word_length)
    checks = [
        (1 <= places <= len(PLACES), f"num_places must be in 1..{len(PLACES)}"),
        (2 <= colours <= len(COLOURS), f"num_colours must be in 2..{len(COLOURS)}"),
        (max_objects < shapes <= len(SHAPES), f"num_shapes must be in {max_objects + 1}..{len(SHAPES)} "
                                              "(the counting group needs a shape no object has)"),
        (bool(words), f"no word of length {word_length} in vocab.WORDS"),
        (GROUP_SUBDIV**2 * (grid * grid - max_objects - 2) >= max_count,
         f"grid {grid} leaves too few free cells for {max_objects} objects, a trail, a sign and "
         f"{max_count} group items"),
        (frames >= 3, "a clip needs at least 3 frames"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"world config: {message}")
    return WorldVocab(PLACES[:places], SHAPES[:shapes], tuple(COLOURS)[:colours], words, grid,
                      max_objects, max_count, frames)


def world_vocab(cfg: WorldConfig) -> WorldVocab:
    """The vocabulary subsets of ``cfg``; raises ``ValueError`` when the sizes cannot fit together."""
    return _vocab(cfg.num_places, cfg.num_shapes, cfg.num_colours, cfg.word_length, cfg.grid,
                  cfg.max_objects, cfg.max_count, cfg.frames)


@dataclass(frozen=True)
class Obj:
    """One object in grid cell (row, col); ``motion`` is a DIRECTIONS entry (drawn as a fading trail)."""

    shape: str
    colour: str
    size: str
    row: int
    col: int
    motion: str | None = None


@dataclass(frozen=True)
class TextItem:
    """A word from WORDS on a sign, book cover or poster in grid cell (row, col)."""

    word: str
    kind: str
    row: int
    col: int


@dataclass(frozen=True)
class Group:
    """Identical small items at ``slots`` (row, col) of the ``GROUP_SUBDIV * grid`` fine grid."""

    shape: str
    colour: str
    slots: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        return len(self.slots)


@dataclass(frozen=True)
class Scene:
    """A still image's ground truth. ``seed`` varies the texture phase and jitter, nothing semantic."""

    place: str
    objects: tuple[Obj, ...]
    text: TextItem | None = None
    group: Group | None = None
    grid: int = 3
    seed: int = 0

    @property
    def count(self) -> int:
        """Members of the countable group (0 when there is none)."""
        return self.group.count if self.group else 0

    def shapes_present(self) -> set[str]:
        return {o.shape for o in self.objects} | ({self.group.shape} if self.group else set())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scene":
        group = data.get("group")
        text = data.get("text")
        return cls(
            place=data["place"],
            objects=tuple(Obj(**o) for o in data["objects"]),
            text=TextItem(**text) if text else None,
            group=Group(group["shape"], group["colour"], tuple(tuple(s) for s in group["slots"])) if group else None,
            grid=data.get("grid", 3),
            seed=data.get("seed", 0),
        )


@dataclass
class _Layout:
    """Free cells while a scene is being built (mutable scratch, never stored)."""

    grid: int
    free: set[tuple[int, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.free = {(r, c) for r in range(self.grid) for c in range(self.grid)}

    def take(self, rng: np.random.Generator, n: int = 1) -> list[tuple[int, int]]:
        cells = sorted(self.free)
        picked = [cells[i] for i in rng.choice(len(cells), size=n, replace=False)]
        self.free -= set(picked)
        return picked


def _pick(rng: np.random.Generator, items) -> Any:
    items = list(items)
    return items[int(rng.integers(len(items)))]


def _objects(rng: np.random.Generator, v: WorldVocab, layout: _Layout) -> list[Obj]:
    n = int(rng.integers(1, v.max_objects + 1))
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < n:  # distinct (shape, colour): every object has a unique full name
        pairs.add((_pick(rng, v.shapes), _pick(rng, v.colours)))
    ordered = sorted(pairs)
    rng.shuffle(ordered)
    cells = layout.take(rng, n)
    return [Obj(s, c, _pick(rng, SIZES), r, col) for (s, c), (r, col) in zip(ordered, cells)]


def _add_motion(rng: np.random.Generator, objects: list[Obj], layout: _Layout) -> list[Obj]:
    """Give one object a motion direction whose trail cell (behind it) is free; reserve that cell."""
    direction = _pick(rng, DIRECTIONS)
    dr, dc = STEP[direction]
    movable = [i for i, o in enumerate(objects) if (o.row - dr, o.col - dc) in layout.free]
    if not movable:
        return objects
    i = _pick(rng, movable)
    o = objects[i]
    layout.free.discard((o.row - dr, o.col - dc))
    objects[i] = Obj(o.shape, o.colour, o.size, o.row, o.col, direction)
    return objects


def _group(rng: np.random.Generator, v: WorldVocab, layout: _Layout, objects: list[Obj]) -> Group | None:
    count = int(rng.integers(0, v.max_count + 1))  # uniform over 0..max_count
    if count == 0:
        return None
    shape = _pick(rng, [s for s in v.shapes if s not in {o.shape for o in objects}])
    k = GROUP_SUBDIV
    slots = sorted((r * k + i, c * k + j) for r, c in layout.free for i in range(k) for j in range(k))
    chosen = sorted(slots[i] for i in rng.choice(len(slots), size=count, replace=False))
    return Group(shape, _pick(rng, v.colours), tuple(chosen))


def sample_scene(rng: np.random.Generator, cfg: WorldConfig) -> Scene:
    """Draw a scene: place, objects, maybe a moving object, maybe a word, a group of 0..max_count items.

    Marginals are uniform (place, shape, colour, size, cell, direction, word, group count), so answers
    computed from random scenes are close to balanced before any answer-first selection.
    """
    v = world_vocab(cfg)
    layout = _Layout(v.grid)
    place = _pick(rng, v.places)
    objects = _objects(rng, v, layout)
    if rng.random() < MOTION_PROB:
        objects = _add_motion(rng, objects, layout)
    text = None
    if rng.random() < cfg.text_prob:
        (row, col), = layout.take(rng, 1)
        text = TextItem(_pick(rng, v.words), _pick(rng, TEXT_KINDS), row, col)
    group = _group(rng, v, layout, objects)
    return Scene(place, tuple(objects), text, group, v.grid, int(rng.integers(2**31)))


def stream_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """An independent generator per (world seed, named stream, item): random access, disjoint streams.

    Train and evaluation items come from different streams, so evaluation never reuses a train seed.
    """
    tag = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, tag, index])


def position_name(row: int, col: int, grid: int) -> str:
    """Grid cell as words: 'top left', 'center', 'bottom' (3x3); 'top left' (2x2); 'row 2, column 4'."""
    if grid == 3:
        vert, horiz = ("top", "", "bottom")[row], ("left", "", "right")[col]
        return " ".join(p for p in (vert, horiz) if p) or "center"
    if grid == 2:
        return f"{('top', 'bottom')[row]} {('left', 'right')[col]}"
    return f"row {row + 1}, column {col + 1}"


def all_positions(grid: int) -> tuple[str, ...]:
    return tuple(position_name(r, c, grid) for r in range(grid) for c in range(grid))
