"""Video clips: objects that move, approach, separate, appear and disappear over ``cfg.frames`` frames.

A clip is a place plus object *tracks* (per-frame centre and opacity) and the *events* that produced
them. Events are ground truth for action yes/no questions, event order ("does X happen before Y?")
and attributes ("what colour is the shape that appears?"). With two events the first ends on the
frame where the second starts, so their order is never ambiguous. Track shapes are distinct within a
clip, so "the star" names one object.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.world.render import RADIUS, canvas_size, downsample_sizes
from lynxlib.world.scene import WorldVocab, world_vocab
from lynxlib.world.shapes import draw_shape
from lynxlib.world.textures import paint_place
from lynxlib.world.vocab import SIZES, VIDEO_ACTIONS

PAIR_ACTIONS = ("approach", "separate")
MOVES = {"move_left": (0, -1), "move_right": (0, 1), "move_up": (-1, 0), "move_down": (1, 0)}
TWO_EVENT_PROB = 0.5
DISTRACTOR_PROB = 0.5


@dataclass(frozen=True)
class Track:
    """One object through the clip: centre (x, y) in image units and opacity per frame."""

    shape: str
    colour: str
    size: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    alphas: tuple[float, ...]


@dataclass(frozen=True)
class Event:
    """``action`` (VIDEO_ACTIONS) by ``subjects`` (track indices) between frames ``start`` and ``end``."""

    action: str
    subjects: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Clip:
    place: str
    tracks: tuple[Track, ...]
    events: tuple[Event, ...]
    grid: int = 3
    seed: int = 0

    @property
    def frames(self) -> int:
        return len(self.tracks[0].xs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Clip":
        tracks = tuple(Track(t["shape"], t["colour"], t["size"], tuple(t["xs"]), tuple(t["ys"]), tuple(t["alphas"]))
                       for t in data["tracks"])
        events = tuple(Event(e["action"], tuple(e["subjects"]), e["start"], e["end"]) for e in data["events"])
        return cls(data["place"], tracks, events, data.get("grid", 3), data.get("seed", 0))


def _ramp(frames: int, start: int, end: int) -> np.ndarray:
    """0 up to ``start``, linear to 1 at ``end``, 1 after: the progress of an event per frame."""
    t = np.arange(frames, dtype=float)
    return np.clip((t - start) / (end - start), 0.0, 1.0)


def _track(rng, v: WorldVocab, shape: str, path: tuple[tuple[float, float], tuple[float, float]],
           progress: np.ndarray, alphas: np.ndarray, size: str | None = None) -> Track:
    """A track moving from cell coords path[0] to path[1] (row, col) as ``progress`` goes 0 -> 1."""
    (r0, c0), (r1, c1) = path
    rows, cols = r0 + (r1 - r0) * progress, c0 + (c1 - c0) * progress
    xs = tuple(round(float((c + 0.5) / v.grid), 5) for c in cols)
    ys = tuple(round(float((r + 0.5) / v.grid), 5) for r in rows)
    colour = v.colours[int(rng.integers(len(v.colours)))]
    size = size or SIZES[int(rng.integers(len(SIZES)))]
    return Track(shape, colour, size, xs, ys, tuple(round(float(a), 5) for a in alphas))


def _intervals(rng: np.random.Generator, frames: int, n: int) -> list[tuple[int, int]]:
    if n == 2:
        mid = frames // 2
        return [(0, mid), (mid, frames - 1)]
    start = int(rng.integers(0, frames - 2))
    return [(start, int(rng.integers(start + 2, frames)))]


def _place_event(rng, v: WorldVocab, action: str, span: tuple[int, int], free: set, shapes: list[str],
                 frames: int) -> list[Track] | None:
    """Tracks for one event on free cells (reserving them), or None when the layout has no room."""
    progress = _ramp(frames, *span)
    ones = np.ones(frames)
    if action in PAIR_ACTIONS:  # two objects on one free row, outer columns <-> half a cell off centre
        rows = [r for r in range(v.grid) if all((r, c) in free for c in range(v.grid))]
        if not rows:
            return None
        r = rows[int(rng.integers(len(rows)))]
        free -= {(r, c) for c in range(v.grid)}
        outer, inner = (0.0, v.grid - 1.0), ((v.grid - 2) / 2, v.grid / 2)
        a, b = (outer, inner) if action == "approach" else (inner, outer)
        return [_track(rng, v, shapes.pop(), ((r, a[i]), (r, b[i])), progress, ones, "small") for i in range(2)]
    if action in MOVES:
        dr, dc = MOVES[action]
        starts = [(r, c) for r, c in sorted(free) if (r + dr, c + dc) in free]
        if not starts:
            return None
        r, c = starts[int(rng.integers(len(starts)))]
        free -= {(r, c), (r + dr, c + dc)}
        return [_track(rng, v, shapes.pop(), ((r, c), (r + dr, c + dc)), progress, ones)]
    cells = sorted(free)
    if not cells:
        return None
    cell = cells[int(rng.integers(len(cells)))]
    free.discard(cell)
    alphas = {"appear": progress, "disappear": 1.0 - progress}.get(action, ones)  # else: a static object
    return [_track(rng, v, shapes.pop(), (cell, cell), progress, alphas)]


def _try_clip(rng: np.random.Generator, v: WorldVocab) -> Clip | None:
    n_events = 2 if v.frames >= 5 and rng.random() < TWO_EVENT_PROB else 1
    actions = [VIDEO_ACTIONS[int(rng.integers(len(VIDEO_ACTIONS)))] for _ in range(n_events)]
    shapes = [v.shapes[i] for i in rng.permutation(len(v.shapes))]
    free = {(r, c) for r in range(v.grid) for c in range(v.grid)}
    tracks: list[Track] = []
    events: list[Event] = []
    for action, span in zip(actions, _intervals(rng, v.frames, n_events)):
        placed = _place_event(rng, v, action, span, free, shapes, v.frames)
        if placed is None:
            return None
        events.append(Event(action, tuple(range(len(tracks), len(tracks) + len(placed))), *span))
        tracks += placed
    if rng.random() < DISTRACTOR_PROB and free and shapes:
        tracks += _place_event(rng, v, "static", (0, v.frames - 1), free, shapes, v.frames)
    place = v.places[int(rng.integers(len(v.places)))]
    return Clip(place, tuple(tracks), tuple(events), v.grid, int(rng.integers(2**31)))


def sample_clip(rng: np.random.Generator, cfg: WorldConfig) -> Clip:
    """Draw a clip: 1-2 events (uniform over VIDEO_ACTIONS), maybe a static distractor, a place."""
    v = world_vocab(cfg)
    for _ in range(100):
        clip = _try_clip(rng, v)
        if clip is not None:
            return clip
    raise RuntimeError(f"could not lay out a clip on a {v.grid}x{v.grid} grid")


def is_static(clip: Clip, track: int) -> bool:
    """True when the track neither moves nor fades: a distractor that takes part in no event."""
    t = clip.tracks[track]
    return len(set(t.xs)) == 1 and len(set(t.ys)) == 1 and len(set(t.alphas)) == 1


def render_clip_sizes(clip: Clip, sizes: tuple[int, ...]) -> dict[int, np.ndarray]:
    """{size: (F, size, size, 3) uint8}: every frame rendered once on a shared canvas, then downsampled."""
    side = canvas_size(tuple(sizes))
    background = paint_place(clip.place, side, np.random.default_rng([clip.seed, 0]))
    out = {s: np.empty((clip.frames, s, s, 3), np.uint8) for s in sizes}
    for f in range(clip.frames):
        img = background.copy()
        for t in clip.tracks:
            if t.alphas[f] > 0:
                draw_shape(img, shape=t.shape, colour=t.colour, cx=t.xs[f], cy=t.ys[f],
                           r=RADIUS[t.size] / clip.grid, alpha=t.alphas[f])
        for s, small in downsample_sizes(img, tuple(sizes)).items():
            out[s][f] = small
    return out


def render_clip(clip: Clip, size: int) -> np.ndarray:
    """The clip as (F, size, size, 3) uint8 frames."""
    return render_clip_sizes(clip, (size,))[size]
