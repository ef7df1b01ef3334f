"""Scene-graph tokens (lynxlib/evaluate/oracle.py): exact composition, layout, cache round trip."""
from __future__ import annotations

import numpy as np
import pytest

from lynxlib.evaluate.oracle import OracleTable, oracle_arrays, place_only_clips, scene_tokens, write_oracle_cache
from lynxlib.features import FeatureCache
from lynxlib.world.scene import Group, Obj, Scene, TextItem

SIDE = 6  # 6 patches per side on a 3 x 3 grid: 2 x 2 patches per cell, 1 patch per group slot


def _scene() -> Scene:
    return Scene(place="beach", objects=(Obj("star", "blue", "large", 0, 2), Obj("circle", "red", "small", 2, 0)),
                 text=TextItem("owl", "sign", 1, 1), group=Group("cross", "green", ((0, 0), (5, 5))), grid=3)


@pytest.fixture()
def table() -> OracleTable:
    return OracleTable.draw(dim=32, side=SIDE, seed=0)


def _patch(tokens: np.ndarray, row: int, col: int) -> np.ndarray:
    return tokens[1 + row * SIDE + col]


def test_each_patch_is_exactly_what_its_cell_holds(table):
    tokens, t = scene_tokens(_scene(), table), table
    assert tokens.shape == (1 + SIDE * SIDE, 32)
    base = lambda r, c: t("place", "beach") + t.positions[r * SIDE + c]  # noqa: E731
    star = t("flag", "object") + t("shape", "star") + t("colour", "blue") + t("size", "large")
    np.testing.assert_allclose(_patch(tokens, 0, 4), base(0, 4) + star, atol=1e-6)   # cell (0, 2)
    np.testing.assert_allclose(_patch(tokens, 1, 5), base(1, 5) + star, atol=1e-6)
    group = t("flag", "group") + t("shape", "cross") + t("colour", "green")
    np.testing.assert_allclose(_patch(tokens, 0, 0), base(0, 0) + group, atol=1e-6)  # slot (0, 0)
    np.testing.assert_allclose(_patch(tokens, 0, 1), base(0, 1), atol=1e-6)          # same cell, no slot
    word = t("flag", "text") + t("word", "owl") + t("kind", "sign")
    np.testing.assert_allclose(_patch(tokens, 2, 3), base(2, 3) + word, atol=1e-6)   # cell (1, 1)
    np.testing.assert_allclose(tokens[0], t("place", "beach") + t("flag", "cls"), atol=1e-6)


def test_binding_is_linearly_readable(table):
    """The colour of the object in a patch is the colour vector nearest the patch minus its layout."""
    tokens = scene_tokens(_scene(), table)
    rest = _patch(tokens, 4, 0) - table("place", "beach") - table.positions[4 * SIDE]
    scores = {c: float(rest @ v) for c, v in table.vectors["colour"].items()}
    assert max(scores, key=scores.get) == "red"


def test_arrays_and_clips_have_the_cache_layout(table):
    arrays = oracle_arrays([_scene(), _scene()], table)
    assert arrays.shape == (2, 1, 1 + SIDE * SIDE, 32) and arrays.dtype == np.float32
    clips = place_only_clips(["beach", "forest"], table, frames=5)
    assert clips.shape == (2, 5, 1 + SIDE * SIDE, 32)
    np.testing.assert_allclose(clips[1, 3, 0], table("place", "forest") + table("flag", "cls"), atol=1e-6)
    assert not np.allclose(clips[0, 0, 1], clips[1, 0, 1])


def test_cell_terms_name_the_grid_cell_and_leave_the_rest_unchanged():
    plain, cells = OracleTable.draw(dim=32, side=SIDE, seed=0), OracleTable.draw(dim=32, side=SIDE, seed=0, cells=True)
    np.testing.assert_array_equal(plain.positions, cells.positions)  # tables without cells keep their draws
    diff = _patch(scene_tokens(_scene(), cells), 5, 0) - _patch(scene_tokens(_scene(), plain), 5, 0)
    np.testing.assert_allclose(diff, cells("row", "2") + cells("col", "0"), atol=1e-6)  # patch (5, 0): cell (2, 0)
    assert not np.allclose(cells("row", "2"), cells("col", "2"))


def test_unknown_value_names_the_term(table):
    with pytest.raises(ValueError, match="shape 'blob'"):
        table("shape", "blob")


def test_table_is_deterministic():
    a, b = OracleTable.draw(dim=16, side=4, seed=3), OracleTable.draw(dim=16, side=4, seed=3)
    np.testing.assert_array_equal(a("colour", "red"), b("colour", "red"))
    assert not np.allclose(a("colour", "red"), OracleTable.draw(dim=16, side=4, seed=4)("colour", "red"))


class _World:
    def scenes(self, split):
        return [_scene()] * 3

    def clips(self, split):
        raise AssertionError("no video kind was asked for")


def test_cache_round_trip_keeps_existing_arrays(tmp_path, table):
    cache = FeatureCache(tmp_path, "oracle-test")
    write_oracle_cache(cache, _World(), table, splits={"train": ("image",)})
    loaded = FeatureCache(tmp_path, "oracle-test").tokens("train_images", [2, 0])
    assert tuple(loaded.shape) == (2, 1, 1 + SIDE * SIDE, 32)
    np.testing.assert_allclose(loaded[0, 0].numpy(), scene_tokens(_scene(), table), atol=1e-6)
    before = cache.path("train_images").stat().st_mtime_ns
    write_oracle_cache(cache, _World(), OracleTable.draw(dim=32, side=SIDE, seed=9), splits={"train": ("image",)})
    assert cache.path("train_images").stat().st_mtime_ns == before
