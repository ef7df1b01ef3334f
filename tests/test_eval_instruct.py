"""Instruction following: answer length and compliance per held-out style, phrasing generalisation."""
import math

import pytest

from lynxlib.evaluate.instruct import (PAPER_SHORT_ANSWER_WORDS, complies, has_reason, instruct_table,
                                       length_table, phrasing_accuracy, phrasing_table, style_stats)
from lynxlib.evaluate.text import word_count


def test_word_count_and_compliance():
    assert word_count("A red circle, on the beach.") == 6
    assert word_count("Red. —") == 1 and word_count("") == 0
    assert complies("Red.", style="one_word") and not complies("Bright red", style="one_word")
    assert complies("a red circle", style="short") and not complies("one two three four five six", style="short")
    assert complies("one two three four five six", style="short", short_max=6)
    assert not complies("", style="short")
    assert complies("It is wet because it rained", style="explain")
    assert complies("Answer: red", style="explain") and complies("it rained, so it is wet", style="explain")
    assert not complies("It is also wet", style="explain")   # 'so' only as a whole word
    assert has_reason("Since noon") and not has_reason("reasonable")
    with pytest.raises(ValueError, match="unknown style 'poem'"):
        complies("x", style="poem")


def test_style_stats_numbers():
    rows = [{"style": "one_word", "response": "red"}, {"style": "one_word", "response": "a red one"},
            {"style": "short", "response": "two circles"}, {"style": "short", "response": "w " * 10},
            {"style": "explain", "response": "red, because the circle is red"}]
    stats = {s.style: s for s in style_stats(rows)}
    assert [s.style for s in style_stats(rows)] == ["short", "one_word", "explain"]
    assert stats["one_word"].mean_words == 2.0 and stats["one_word"].compliance == 0.5
    assert stats["short"].mean_words == 6.0 and stats["short"].compliance == 0.5
    assert stats["short"].std_words == pytest.approx(math.sqrt(32))
    assert stats["explain"].n == 1 and stats["explain"].compliance == 1.0 and stats["explain"].std_words == 0.0
    table = instruct_table(rows)
    assert {"style", "mean_words", "compliance"} <= set(table.columns)
    both = length_table({"vicuna": rows, "llama": rows[:2]})
    assert list(both.model) == ["vicuna"] * 3 + ["llama"]
    assert both.attrs["paper_short_answer_words"] == {"Vicuna-based": 15.81, "LLaMA-based": 20.15}
    assert PAPER_SHORT_ANSWER_WORDS["LLaMA-based"] > PAPER_SHORT_ANSWER_WORDS["Vicuna-based"]
    with pytest.raises(ValueError, match="row 0: missing key 'response'"):
        style_stats([{"style": "short"}])


def test_phrasing_accuracy():
    rows = ([{"phrasing": "train", "correct": c} for c in (True, True, True, False)]
            + [{"phrasing": "held_out", "correct": c} for c in (True, False, None)])
    stats = phrasing_accuracy(rows)
    assert (stats.n_train, stats.n_held_out) == (4, 2)
    assert stats.train_accuracy == 0.75 and stats.held_out_accuracy == 0.5 and stats.gap == 0.25
    table = phrasing_table({"diverse": rows, "single": rows[:4]})
    assert table.loc["diverse", "gap"] == 0.25 and math.isnan(table.loc["single", "held_out_accuracy"])
    with pytest.raises(ValueError, match="row 0: phrasing must be"):
        phrasing_accuracy([{"phrasing": "test", "correct": True}])
