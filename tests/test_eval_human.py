"""Human rating: the paper's tie rules, seeded blind order, CSV round trip, Figure 4, the widget."""
import numpy as np
import pandas as pd
import pytest

from lynxlib.evaluate.human import (RatingSession, RatingWidget, RuleViolation, aggregate_ratings,
                                    check_scores, ratings_figure)

MODELS = ["lynx", "blip2", "minigpt4"]


def session(**kwargs):
    return RatingSession(models=MODELS, item_ids=list(range(12)), annotator="ann1", **kwargs)


def test_order_is_seeded_blind_permutation():
    s = session(seed=3)
    assert sorted(s.order(0)) == sorted(MODELS) and s.order(0) == session(seed=3).order(0)
    orders = {tuple(s.order(i)) for i in range(12)}
    assert len(orders) > 1                                   # shuffled per item
    other = RatingSession(models=MODELS, item_ids=list(range(12)), annotator="ann2", seed=3)
    assert any(other.order(i) != s.order(i) for i in range(12))


def test_tie_rules_per_item():
    assert check_scores({"lynx": 5, "blip2": 3, "minigpt4": 4}, models=MODELS) is False
    assert check_scores({"lynx": 4, "blip2": 4, "minigpt4": 2}, models=MODELS) is True
    with pytest.raises(RuleViolation, match="at most 2 models"):
        check_scores({"lynx": 4, "blip2": 4, "minigpt4": 4}, models=MODELS)
    four = MODELS + ["owl"]
    with pytest.raises(RuleViolation, match="at most 2 models"):   # two tied pairs: 4 models tied
        check_scores({"lynx": 4, "blip2": 4, "minigpt4": 2, "owl": 2}, models=four)
    for bad in (0, 6, "3", True, 3.0):
        with pytest.raises(RuleViolation, match="integer 1-5"):
            check_scores({"lynx": bad, "blip2": 3, "minigpt4": 4}, models=MODELS)
    with pytest.raises(RuleViolation, match=r"missing \['minigpt4'\]"):
        check_scores({"lynx": 1, "blip2": 3}, models=MODELS)


def test_at_most_ten_ties_per_annotator():
    s = session()
    for item in range(10):
        s.rate(item, {"lynx": 5, "blip2": 2, "minigpt4": 2})
    assert s.ties_used == 10
    s.rate(3, {"lynx": 5, "blip2": 1, "minigpt4": 1})       # re-rating a tied item is not a new tie
    with pytest.raises(RuleViolation, match="all 10 ties"):
        s.rate(10, {"lynx": 4, "blip2": 4, "minigpt4": 1})
    assert 10 not in s.scores
    s.rate(3, {"lynx": 5, "blip2": 1, "minigpt4": 2})       # frees a tie
    s.rate(10, {"lynx": 4, "blip2": 4, "minigpt4": 1})
    assert s.ties_used == 10 and s.pending == [11]
    with pytest.raises(RuleViolation, match="unknown item 99"):
        s.rate(99, {"lynx": 1, "blip2": 2, "minigpt4": 3})


def test_csv_round_trip_and_aggregation(tmp_path):
    s = session()
    s.rate(0, {"lynx": 5, "blip2": 2, "minigpt4": 3})
    s.rate(1, {"lynx": 4, "blip2": 2, "minigpt4": 2})
    path = s.save_csv(tmp_path / "ratings.csv")
    frame = pd.read_csv(path)
    assert len(frame) == 6 and set(frame.columns) == {"annotator", "item_id", "model", "score", "position"}
    back = RatingSession.from_csv(path, models=MODELS, item_ids=list(range(12)))
    assert back.scores == s.scores and back.annotator == "ann1" and back.ties_used == 1
    stats = aggregate_ratings(frame)
    assert list(stats.index) == ["blip2", "minigpt4", "lynx"]          # lowest first, as Figure 4
    assert stats.loc["lynx", "mean"] == 4.5 and stats.loc["blip2", "se"] == 0.0
    assert stats.loc["lynx", "se"] == pytest.approx(np.std([5, 4], ddof=1) / np.sqrt(2))
    fig = ratings_figure(frame, paper={"lynx": 4.13, "blip2": 2.34})
    assert len(fig.axes[0].patches) == 6 and fig.axes[0].get_xlim() == (1.0, 5.0)


def test_widget_is_a_thin_view(tmp_path):
    s = RatingSession(models=MODELS, item_ids=["a", "b"], annotator="ann1", max_ties=0)
    items = {k: {"image": np.zeros((8, 8, 3)), "question": "Describe <this>.",
                 "answers": {m: f"{m} says {k}" for m in MODELS}} for k in ("a", "b")}
    widget = RatingWidget(s, items, path=tmp_path / "r.csv")
    assert widget.image.value[:4] == b"\x89PNG" and "&lt;this&gt;" in widget.question.value
    assert [f"{m} says a" in box.value for box, m in zip(widget.answers, s.order("a"))] == [True] * 3
    assert widget.submit() is False and "score every answer" in widget.status.value
    for picker, value in zip(widget.pickers, (3, 3, 1)):
        picker.value = value
    assert widget.submit() is False and "ties" in widget.status.value     # max_ties=0
    for picker, value in zip(widget.pickers, (3, 2, 1)):
        picker.value = value
    assert widget.submit() is True and widget.index == 1
    assert s.scores["a"] == dict(zip(s.order("a"), (3, 2, 1)))
    assert len(pd.read_csv(tmp_path / "r.csv")) == 3
    with pytest.raises(ValueError, match="item 'b'"):
        RatingWidget(s, {"a": items["a"]}, path=tmp_path / "x.csv")
