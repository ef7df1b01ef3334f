"""Scene-graph tokens: a perfect tower, to ask whether the bridge and the LM can bind at all.

Every calibration probe so far found the tiny MLLM naming *a* colour of the image rather than the
asked object's (docs/calibration.md). Either the tower's tokens do not carry each object's attributes
bound together in its cell, or the bridge and the LM cannot do the look-up even when they do. These
tokens settle it: they have the tower's layout (a CLS token, then ``side x side`` patch tokens, row
major) and carry exactly the scene graph, bound per patch:

    token(patch) = place + position(patch) + [row + column of its grid cell, with ``cells``]
                   + [shape + colour + size of the object in its cell]
                   + [shape + colour + group flag of the group item in its slot] + [word + kind of the text]

Each term is a fixed random vector (one table per attribute, drawn from ``seed``), so a linear read of
a patch token recovers every attribute of what is there. ``position(patch)`` alone is one unrelated
vector per patch, as a learned position embedding starts; with ``cells`` each patch also names the row
and the column of its grid cell, the scene graph's own coordinates, which Spatial answers are phrased in.
Videos get only their place (no frame's scene graph is modelled): probes with these tokens train and
score still-image tasks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from lynxlib.runs import show_progress
from lynxlib.world.scene import GROUP_SUBDIV, Scene
from lynxlib.world.vocab import COLOURS, PLACES, SHAPES, SIZES, TEXT_KINDS, WORDS

MAX_GRID = 8  # grid cells per side the row / column terms cover (worlds use 3 or 4)
TERMS = {"place": PLACES, "shape": SHAPES, "colour": tuple(COLOURS), "size": SIZES, "word": WORDS,
         "kind": TEXT_KINDS, "flag": ("cls", "object", "group", "text")}
CELL_TERMS = {"row": tuple(str(i) for i in range(MAX_GRID)), "col": tuple(str(i) for i in range(MAX_GRID))}


@dataclass(frozen=True)
class OracleTable:
    """One random vector per attribute value (``vectors[term][value]``) and per patch position."""

    dim: int
    side: int
    vectors: dict[str, dict[str, np.ndarray]]
    positions: np.ndarray  # (side * side, dim)
    cells: bool = False    # add each patch's grid-cell row and column terms

    @classmethod
    def draw(cls, *, dim: int, side: int, seed: int = 0, cells: bool = False) -> "OracleTable":
        rng = np.random.default_rng(seed)
        unit = 1.0 / np.sqrt(dim)  # each term ~ unit norm: sums stay comparable whatever a patch holds
        vectors = {term: {value: rng.normal(0.0, unit, dim).astype(np.float32) for value in values}
                   for term, values in TERMS.items()}
        positions = rng.normal(0.0, unit, (side * side, dim)).astype(np.float32)
        # drawn after everything else, so tables without cells are unchanged by their existence
        vectors |= {term: {value: rng.normal(0.0, unit, dim).astype(np.float32) for value in values}
                    for term, values in CELL_TERMS.items()}
        return cls(dim, side, vectors, positions, cells)

    def __call__(self, term: str, value: str) -> np.ndarray:
        try:
            return self.vectors[term][value]
        except KeyError:
            raise ValueError(f"oracle tokens: {term} {value!r} is not in the world vocabulary") from None


def _cell(patch: int, side: int, cells: int) -> int:
    """The cell (of ``cells`` per side) that patch row/column ``patch`` (of ``side``) lies in."""
    return patch * cells // side


def scene_tokens(scene: Scene, table: OracleTable) -> np.ndarray:
    """One scene -> ``(1 + side^2, dim)`` float32: CLS, then the patches row-major (the tower's order)."""
    side, grid = table.side, scene.grid
    objects = {(o.row, o.col): o for o in scene.objects}
    slots = set(scene.group.slots) if scene.group is not None else set()
    place = table("place", scene.place)
    out = np.empty((1 + side * side, table.dim), dtype=np.float32)
    out[0] = place + table("flag", "cls")
    for index in range(side * side):
        prow, pcol = divmod(index, side)
        token = place + table.positions[index]
        cell = (_cell(prow, side, grid), _cell(pcol, side, grid))
        if table.cells:
            token = token + table("row", str(cell[0])) + table("col", str(cell[1]))
        if (o := objects.get(cell)) is not None:
            token = token + table("flag", "object") + table("shape", o.shape) + table("colour", o.colour) \
                + table("size", o.size)
        slot = (_cell(prow, side, grid * GROUP_SUBDIV), _cell(pcol, side, grid * GROUP_SUBDIV))
        if slot in slots:
            token = token + table("flag", "group") + table("shape", scene.group.shape) \
                + table("colour", scene.group.colour)
        if scene.text is not None and cell == (scene.text.row, scene.text.col):
            token = token + table("flag", "text") + table("word", scene.text.word) + table("kind", scene.text.kind)
        out[1 + index] = token
    return out


def oracle_arrays(scenes: list[Scene], table: OracleTable, *, desc: str = "oracle tokens") -> np.ndarray:
    """Scenes -> ``(N, 1, 1 + side^2, dim)``: the feature cache's layout for one-frame images."""
    rows = [scene_tokens(s, table) for s in tqdm(scenes, desc=desc, leave=False, disable=not show_progress())]
    return np.stack(rows)[:, None]


def place_only_clips(places: list[str], table: OracleTable, frames: int) -> np.ndarray:
    """Clips -> ``(M, F, 1 + side^2, dim)`` carrying only the place (video scene graphs are not modelled)."""
    layout = np.concatenate([table("flag", "cls")[None], table.positions])          # (T, D)
    tokens = np.stack([table("place", p) for p in places])[:, None, None] + layout[None, None]  # (M, 1, T, D)
    return np.ascontiguousarray(np.broadcast_to(tokens, (len(places), frames, *layout.shape)))


def write_oracle_cache(cache, world, table: OracleTable, *, splits: dict[str, tuple[str, ...]]) -> None:
    """Fill ``cache`` (a :class:`~lynxlib.features.FeatureCache`) with oracle arrays named as the
    pipeline names them (``<split>_images``, ``<split>_videos``), so training and evaluation read them
    where they would read the tower's tokens. Arrays already there are kept."""
    def images(split: str) -> np.ndarray:
        return oracle_arrays(world.scenes(split), table, desc=f"oracle {split}_images")

    def videos(split: str) -> np.ndarray:
        clips = world.clips(split)
        return place_only_clips([c.place for c in clips], table, clips[0].frames if clips else 1)

    for split, kinds in splits.items():
        for kind in kinds:
            make = images if kind == "image" else videos
            cache.store(f"{split}_{kind}s", lambda: make(split))
