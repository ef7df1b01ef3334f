"""Position binding read from captions: parsing claims and scoring them against the scene."""
import math

import pytest

from lynxlib.evaluate.caption_claims import binding_summary, caption_claims, claim_frame, claim_pattern, Claim
from lynxlib.world.language import object_phrase
from lynxlib.world.scene import Obj, Scene

COLOURS, SHAPES = ["red", "blue", "green"], ["star", "circle", "cross"]


def scene(*objects: Obj) -> Scene:
    return Scene(place="forest", objects=tuple(objects), grid=3)


def pred(k: int, text: str, kind: str = "image") -> dict:
    return {"part": "openvqa", "kind": kind, "uid": f"openvqa/{kind}/{k}", "prediction": text}


def test_claims_prefer_the_longest_location_and_skip_motion_and_plurals():
    pattern = claim_pattern(colours=COLOURS, shapes=SHAPES, grid=3)
    text = ("A large Red star at the top left, a small blue circle moving to the right at the top, "
            "six small green crosses and a green cross in the center.")
    assert caption_claims(text, pattern=pattern, grid=3) == [
        Claim("red", "star", (0, 0)), Claim("blue", "circle", (0, 1)), Claim("green", "cross", (1, 1))]


def test_world_phrases_parse_back_to_their_cells():
    pattern = claim_pattern(colours=COLOURS, shapes=SHAPES, grid=3)
    for r in range(3):
        for c in range(3):
            obj = Obj(shape="star", colour="red", size="small", row=r, col=c, motion="up" if r == c else None)
            assert caption_claims(object_phrase(obj, 3), pattern=pattern, grid=3) == [Claim("red", "star", (r, c))]


def test_claim_frame_checks_existence_cell_and_the_other_scene():
    scenes = [scene(Obj("star", "red", "large", 0, 0), Obj("circle", "blue", "small", 2, 2)),
              scene(Obj("cross", "green", "large", 1, 1))]
    rows = claim_frame([pred(0, "a red star at the top left, a blue circle at the top right, a green cross on the left"),
                        pred(0, "a red star", kind="video")], scenes, colours=COLOURS, shapes=SHAPES)
    assert list(rows["exists"]) == [True, True, False]
    assert list(rows["right"]) == [True, False, False]
    assert list(rows["exists_elsewhere"]) == [False, False, True]  # scene 1 has the green cross
    assert rows["true_cell"].iloc[1] == (2, 2)


def test_binding_summary_separates_bound_from_shuffled_positions():
    objects = [Obj(s, c, "small", r, col) for (s, c, r, col) in
               [("star", "red", 0, 0), ("circle", "blue", 2, 2), ("cross", "green", 0, 2)]]
    scenes = [scene(*objects) for _ in range(30)]
    right = " and ".join(object_phrase(o, 3) for o in objects)
    bound = binding_summary(claim_frame([pred(k, right) for k in range(30)], scenes, colours=COLOURS, shapes=SHAPES))
    assert bound["cell_acc"] == 1.0 and bound["cell_shuffled_floor"] < 0.6 and bound["exists"] == 1.0
    swapped = "a red star at the bottom right and a blue circle at the top left"  # colours right, cells swapped
    unbound = binding_summary(claim_frame([pred(k, swapped) for k in range(30)], scenes, colours=COLOURS, shapes=SHAPES))
    assert unbound["cell_acc"] == 0.0 and unbound["row_acc"] == 0.0


def test_binding_summary_without_claims_is_nan_and_bad_uids_fail_clearly():
    empty = binding_summary(claim_frame([pred(0, "forest")], [scene()], colours=COLOURS, shapes=SHAPES))
    assert empty["claims"] == 0 and math.isnan(empty["cell_acc"])
    with pytest.raises(ValueError, match="names scene 5"):
        claim_frame([pred(5, "a red star at the top")], [scene()], colours=COLOURS, shapes=SHAPES)
    with pytest.raises(ValueError, match="got none"):
        claim_frame([pred(0, "a red star at the top")], [], colours=COLOURS, shapes=SHAPES)
    with pytest.raises(ValueError, match="does not end in a scene index"):
        claim_frame([{"part": "openvqa", "kind": "image", "uid": "openvqa/image/x", "prediction": ""}], [scene()],
                    colours=COLOURS, shapes=SHAPES)
