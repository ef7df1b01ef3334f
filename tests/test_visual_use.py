"""lynxlib.evaluate.visual_use: the true-vs-shuffled-visuals loss gap."""
import pytest
import torch

from lynxlib.evaluate.visual_use import roll_visuals, visual_gap
from model_kit import TURNS, make_model, smoke, train_batch


def test_roll_visuals_moves_only_the_visual_rows():
    batch = {"input_ids": torch.arange(6).view(3, 2), "vision_tokens": torch.arange(3).view(3, 1, 1, 1).float()}
    rolled = roll_visuals(batch)
    assert torch.equal(rolled["input_ids"], batch["input_ids"])
    assert rolled["vision_tokens"].flatten().tolist() == [2.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="no visual input"):
        roll_visuals({"input_ids": batch["input_ids"]})


def test_gap_is_zero_for_identical_images_and_not_for_different_ones(tok):
    model = make_model(smoke(), tok)
    batch = train_batch(model, tok, TURNS, visual=[True, True, True])
    same = {**batch, "pixel_values": torch.randn(1, 1, 3, 64, 64).expand(3, -1, -1, -1, -1).contiguous()}
    assert visual_gap(model, [same])["gap"] == 0.0
    torch.manual_seed(0)
    differ = {**batch, "pixel_values": torch.randn(3, 1, 3, 64, 64) * 3}
    stats = visual_gap(model, [differ, differ])
    assert stats["batches"] == 2 and stats["gap"] != 0.0
    assert stats["true"] == pytest.approx(float(model(**differ).loss))
    with pytest.raises(ValueError, match="at least one batch"):
        visual_gap(model, [])
