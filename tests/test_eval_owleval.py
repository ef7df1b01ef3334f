"""OwlEval-mini: facts stated by a text, scored against a hand-made scene graph."""
import math

import pytest

from lynxlib.evaluate.owleval import aggregate, extract_facts, owleval_frame, score_text
from lynxlib.evaluate.text import distinct_2

SCENE = {"place": "beach",
         "objects": [{"shape": "circle", "colour": "red", "size": "small"},
                     {"shape": "star", "colour": "blue", "size": "large"}],
         "count": None, "text": "cat"}


def test_extracts_bound_facts():
    facts = extract_facts('On the beach, a small red circle sits beside two stars. The sign says "CAT".')
    assert facts == [("place", "beach"), ("object", "red", "circle", "small"), ("count", "star", 2), ("text", "cat")]
    assert extract_facts("Three large blue crosses in the harbour") == [("object", "blue", "cross", "large"),
                                                                        ("place", "harbor")]
    assert extract_facts("The circle is green.") == [("shape", "circle"), ("colour", "green")]
    assert extract_facts("a cat and a dog") == []        # rendered words count only when quoted or cued


def test_scores_on_known_cases():
    perfect = score_text('A small red circle and a blue star on the beach. The sign says "cat".', SCENE)
    assert (perfect.correctness, perfect.richness, perfect.n_stated) == (1.0, 1.0, 4)
    wrong = score_text("A green circle in the forest.", SCENE)
    assert wrong.correctness == 0.0 and wrong.richness == 0.0
    assert set(wrong.hallucinated) == {("object", "green", "circle", None), ("place", "forest")}
    half = score_text("A red circle in the forest.", SCENE)
    assert half.correctness == 0.5 and half.richness == 0.25
    size = score_text("A large red circle.", SCENE)            # right colour, wrong size: a hallucination
    assert size.correctness == 0.0 and size.richness == 0.0
    empty = score_text("What a lovely picture!", SCENE)
    assert empty.correctness is None and empty.richness == 0.0 and empty.words == 4
    counted = {"place": "office", "objects": [], "count": {"shape": "star", "n": 3}, "text": None}
    assert score_text("There are three stars.", counted).correctness == 1.0
    assert score_text("There are three stars.", counted).richness == 0.5   # place not mentioned
    assert score_text("I count 4 stars in the office.", counted).correctness == 0.5


def test_length_distinct2_and_aggregation():
    assert distinct_2("the cat the cat") == pytest.approx(2 / 3)
    assert distinct_2("word") is None
    scores = {"lynx": [score_text("A red circle on the beach.", SCENE), score_text("Nice.", SCENE)],
              "blip": [score_text("A green star.", SCENE)]}
    table = aggregate(scores)
    assert table.loc["lynx", "correctness"] == 1.0 and table.loc["lynx", "n_undefined"] == 1
    assert table.loc["lynx", "richness"] == pytest.approx((0.5 + 0.0) / 2)
    assert table.loc["lynx", "words"] == 3.5 and table.loc["blip", "correctness"] == 0.0
    frame = owleval_frame(["A red circle.", "hello"], [SCENE, SCENE], item_ids=["a", "b"])
    assert list(frame.columns[:5]) == ["item", "correctness", "richness", "words", "distinct2"]
    assert frame.correctness.iloc[0] == 1.0 and (frame.correctness.iloc[1] is None or math.isnan(frame.correctness.iloc[1]))
    with pytest.raises(ValueError, match="2 texts for 1 scenes"):
        owleval_frame(["a", "b"], [SCENE])
