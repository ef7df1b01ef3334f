"""lynxlib.evaluate.bridge: per-cell probes tell a readout that keeps cells from one that pools."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from lynxlib.config import ResamplerConfig
from lynxlib.evaluate.bridge import (attention_summary, cell_labels, cell_probe_table, colour_by_choices,
                                    colours_present, pca_project)
from lynxlib.resampler import PerceiverResampler

COLOURS = ("red", "blue", "green", "white")
SHAPES = ("circle", "square", "star")


@dataclass
class Obj:
    shape: str
    colour: str
    row: int
    col: int


@dataclass
class Group:
    colour: str


@dataclass
class Scene:
    objects: list
    grid: int = 2
    group: Group | None = None


def scenes_and_tokens(n: int = 400, dim: int = 24):
    """Scenes on a 2 x 2 grid of 2 x 2 patches each; a patch token codes its cell's object one-hot."""
    rng = np.random.default_rng(0)
    scenes, patches = [], torch.zeros(n, 16, dim)
    for i in range(n):
        objs = []
        for r in range(2):
            for c in range(2):
                if rng.random() < 0.6:
                    objs.append(Obj(SHAPES[rng.integers(3)], COLOURS[rng.integers(4)], r, c))
        scenes.append(Scene(objs))
        for o in objs:
            code = torch.zeros(dim)
            code[COLOURS.index(o.colour)] = 1
            code[4 + SHAPES.index(o.shape)] = 1
            code[7] = 1
            for pr in (2 * o.row, 2 * o.row + 1):
                for pc in (2 * o.col, 2 * o.col + 1):
                    patches[i, pr * 4 + pc] = code
    return scenes, patches + 0.01 * torch.randn(n, 16, dim, generator=torch.Generator().manual_seed(1))


def test_cell_labels_cover_every_scene_for_occupancy_and_occupied_cells_otherwise():
    scenes = [Scene([Obj("star", "red", 0, 1)]), Scene([])]
    assert cell_labels(scenes, "occupied", 0, 1) == ([0, 1], [True, False])
    assert cell_labels(scenes, "colour", 0, 1) == ([0], ["red"])
    assert cell_labels(scenes, "shape", 1, 1) == ([], [])


def test_latents_that_keep_the_cells_read_like_the_tower_and_pooled_ones_do_not():
    scenes, patches = scenes_and_tokens()
    # one latent per cell (the mean of its 2 x 2 patches) vs four copies of the mean of all patches
    keep = torch.stack([patches[:, [0, 1, 4, 5]].mean(1), patches[:, [2, 3, 6, 7]].mean(1),
                        patches[:, [8, 9, 12, 13]].mean(1), patches[:, [10, 11, 14, 15]].mean(1)], dim=1)
    pooled = patches.mean(1, keepdim=True).expand(-1, 4, -1)
    good = cell_probe_table(patches, keep, scenes, pca=64).set_index(["attribute", "readout"])["acc"]
    bad = cell_probe_table(patches, pooled, scenes, pca=64).set_index(["attribute", "readout"])["acc"]
    for attr in ("occupied", "shape", "colour"):
        assert good[attr, "cell_mean"] > 0.95 and good[attr, "latents"] > 0.95, attr
        assert bad[attr, "latents"] < good[attr, "latents"] - 0.2, attr


def test_pca_keeps_small_inputs_and_centres_on_training_rows():
    x = torch.randn(50, 6)
    assert torch.allclose(pca_project(x, 30, 8), x - x[:30].mean(0))
    assert pca_project(torch.randn(50, 40), 30, 8).shape == (50, 8)


def test_attention_summary_sees_the_locality_prior_sharpen_attention():
    torch.manual_seed(0)
    media = torch.randn(3, 1 + 64, 12)
    rows = {}
    for loc in (0.0, 8.0):
        cfg = ResamplerConfig(num_latents=16, depth=2, heads=2, dim_head=8, ff_mult=1, locality=loc)
        rows[loc] = attention_summary(PerceiverResampler(dim=16, dim_media=12, cfg=cfg), media)
    assert list(rows[0.0]["layer"]) == [0, 1]
    assert np.allclose(rows[0.0]["uniform"], np.log(65))
    assert (rows[0.0]["entropy"] <= rows[0.0]["uniform"] + 1e-6).all()
    assert (rows[8.0]["entropy"] < rows[0.0]["entropy"] - 0.5).all()
    assert ((rows[0.0]["media_share"] > 0) & (rows[0.0]["media_share"] < 1)).all()


def test_colour_accuracy_is_split_by_the_colours_in_the_image():
    scenes = [Scene([Obj("star", "red", 0, 0)]),                                   # 1 colour
              Scene([Obj("star", "red", 0, 0), Obj("circle", "red", 1, 1)], group=Group("blue")),  # 2
              Scene([Obj("star", "red", 0, 0), Obj("circle", "blue", 1, 1)], group=Group("white"))]  # 3
    assert [colours_present(s) for s in scenes] == [1, 2, 3]
    pred = [{"part": "openvqa", "kind": "image", "category": "Color", "uid": f"openvqa/image/{k}", "correct": ok}
            for k, ok in ((0, True), (1, True), (1, False), (2, False))]
    pred.append({"part": "openvqa", "kind": "image", "category": "Place", "uid": "openvqa/image/2", "correct": True})
    table = colour_by_choices(pred, scenes).set_index("colours")
    assert table["n"].tolist() == [1, 2, 1] and table["accuracy"].tolist() == [1.0, 0.5, 0.0]
    assert table.loc[3, "one_in_k"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no Open-VQA-mini image Color"):
        colour_by_choices(pred[-1:], scenes)


def test_pca_takes_no_more_components_than_training_rows():
    assert pca_project(torch.randn(10, 40), 4, 16).shape == (10, 4)


def test_several_named_counts_replies_that_list_more_than_one_candidate():
    from lynxlib.evaluate.bridge import several_named

    pred = [{"part": "openvqa", "category": "Color", "prediction": "blue", "correct": True},
            {"part": "openvqa", "category": "Color", "prediction": "A red star, a Blue circle.", "correct": True},
            {"part": "openvqa", "category": "Color", "prediction": "red, red", "correct": False},
            {"part": "openvqa", "category": "Place", "prediction": "red and blue", "correct": True}]
    assert several_named(pred, ["red", "blue", "green"]) == {"replies": 3, "several": 1, "several_correct": 1}
