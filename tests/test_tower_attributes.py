"""Stage 0's attribute heads (backbones.tower_attr_loss): the right cells and labels, the word only
where it is legible, a loss that trains, and stage keys untouched while the heads are off."""
import numpy as np
import pytest
import torch

from lynxlib.backbones.attributes import AttributeHeads
from lynxlib.config import load
from lynxlib.stages import stage_key
from lynxlib.world.scene import Group, Obj, Scene, TextItem
from lynxlib.world.vocab import COLOURS, SHAPES, WORDS

SCENES = [
    Scene(place="beach", objects=(Obj("circle", "red", "large", 0, 0), Obj("star", "blue", "small", 2, 2)),
          text=TextItem(word=WORDS[3], kind="sign", row=0, col=2),
          group=Group("heart", "green", ((2, 0), (3, 0), (3, 1)))),
    Scene(place="forest", objects=(Obj("square", "white", "small", 1, 1),)),
]


def grid_tokens(width: int = 8, side: int = 6) -> torch.Tensor:
    """(2, side*side, width) tokens whose value in channel 0 names their 3x3 scene cell (row*3 + col)."""
    cell = torch.arange(side)[:, None] * 3 // side * 3 + torch.arange(side)[None, :] * 3 // side
    tokens = torch.zeros(2, side * side, width)
    tokens[:, :, 0] = cell.flatten().float()
    return tokens


def test_targets_take_each_objects_cell_and_its_labels():
    heads = AttributeHeads(8, max_count=9)
    pairs = heads.targets(grid_tokens(), SCENES, [0, 1], legible=True)
    x, y = pairs["shape"]
    assert x[:, 0].tolist() == [0.0, 8.0, 4.0]  # cells (0,0), (2,2), (1,1)
    assert y.tolist() == [SHAPES.index(s) for s in ("circle", "star", "square")]
    assert pairs["colour"][1].tolist() == [list(COLOURS).index(c) for c in ("red", "blue", "white")]
    assert pairs["size"][1].tolist() == [1, 0, 0]  # SIZES = (small, large)
    assert pairs["word"][0][:, 0].tolist() == [2.0] and pairs["word"][1].tolist() == [3]
    assert pairs["count"][1].tolist() == [3, 0]


def test_word_only_at_the_legible_resolution():
    heads = AttributeHeads(8, max_count=9)
    assert "word" not in heads.targets(grid_tokens(), SCENES, [0, 1], legible=False)
    assert "word" not in heads.targets(grid_tokens(), SCENES, [1], legible=True)  # no text in that scene


def test_heads_learn_separable_attributes():
    torch.manual_seed(0)
    heads = AttributeHeads(16, max_count=9)
    tokens = torch.randn(2, 36, 16, requires_grad=True)
    opt = torch.optim.Adam(list(heads.parameters()) + [tokens], lr=0.05)
    first = heads(tokens, SCENES, [0, 1], legible=True)
    for _ in range(60):
        loss = heads(tokens, SCENES, [0, 1], legible=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first.item()


@pytest.mark.parametrize("key, off_value, on_value", [("tower_attr_loss", 0.0, 1.0), ("tower_high_words", False, True)])
def test_later_stage0_options_off_keep_stage_keys_and_on_change_them(key, off_value, on_value):
    base = load("params/smoke.yaml")
    off = load("params/smoke.yaml", backbones={key: off_value})
    on = load("params/smoke.yaml", backbones={key: on_value})
    for stage in ("backbones", "pretrain_low", "eval"):
        assert stage_key(base, stage) == stage_key(off, stage) != stage_key(on, stage)


def test_cell_pixels_cuts_the_cell_the_tokens_cover():
    from lynxlib.backbones.cells import cell_pixels

    image = np.arange(12 * 12 * 3).reshape(12, 12, 3)
    assert np.array_equal(cell_pixels(image, 1, 2, 3), image[4:8, 8:12])
