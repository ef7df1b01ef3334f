"""Open-VQA: the paper's pooled Overall, categories of the real release, evaluation with missing media."""
import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from lynxlib import paper
from lynxlib.evaluate.judges import RuleJudge
from lynxlib.evaluate.baselines import baselines_frame, majority_answers, majority_baseline, type_floor_baseline
from lynxlib.evaluate.openvqa import (Cell, OpenVQAResult, category_of, comparison_table, evaluate_records, paper_table,
                                      render_markdown, seed_summary, style_table)

FIXTURES = Path(__file__).parent / "fixtures" / "open_vqa"
OURS_IMAGE = {"OCR": (36, 53), "Counting": (25, 37), "Reasoning": (26, 31), "Place": (17, 22),
              "Color": (21, 30), "Spatial": (9, 15), "Action": (17, 20), "Others": (79, 94)}


def load(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def test_pooled_overall_is_the_papers():
    result = OpenVQAResult.from_counts(kind="image", counts=OURS_IMAGE, model="Ours")
    assert result.overall_cell == Cell(230, 302)
    assert round(result.overall, 2) == 76.16
    mean_of_categories = sum(c / t for c, t in OURS_IMAGE.values()) / len(OURS_IMAGE) * 100
    assert abs(mean_of_categories - 76.16) > 1          # the unpooled mean would be wrong
    assert result.to_row() == {"OCR": "36/53", "Counting": "25/37", "Reasoning": "26/31", "Place": "17/22",
                               "Color": "21/30", "Spatial": "9/15", "Action": "17/20", "Others": "79/94",
                               "Overall": "76.16"}
    video = OpenVQAResult.from_counts(kind="video", counts={"Action (Y/N)": "69/108", "Others": "29/40"})
    assert round(video.overall, 2) == 66.22
    assert result.cells["OCR"].se == pytest.approx(100 * math.sqrt((36 / 53) * (17 / 53) / 53))


@pytest.mark.parametrize("kind", ["image", "video"])
def test_every_printed_row_of_the_paper(kind):
    frame = pd.read_csv(Path(paper.__file__).parent / "paper_data" / f"open_vqa_{kind}.csv")
    categories = paper.IMAGE_CATEGORIES if kind == "image" else paper.VIDEO_CATEGORIES
    for _, row in frame.iterrows():
        counts = {c: row[c].replace("/109", "/108") for c in categories}   # Table 4's misprint (README)
        result = OpenVQAResult.from_counts(kind=kind, counts=counts, model=row["model"])
        assert f"{result.overall:.2f}" == f"{row['Overall']:.2f}", row["model"]


def test_categories_of_the_real_release():
    images, videos = load("Open_VQA_images.jsonl"), load("Open_VQA_videos.jsonl")
    counts = Counter(category_of(r) for r in images)
    assert [counts[c] for c in paper.IMAGE_CATEGORIES] == [53, 37, 31, 22, 30, 15, 20, 94]
    counts = Counter(category_of(r) for r in videos)
    assert [counts[c] for c in paper.VIDEO_CATEGORIES] == [108, 40]
    assert category_of({"category": "colour", "image": "x"}) == "Color"
    with pytest.raises(ValueError, match="index=7: unknown image category 'Weather'"):
        category_of({"index": 7, "class": "Weather", "image": "x"})


def test_evaluate_real_records_with_missing_media(tmp_path):
    records = load("Open_VQA_images.jsonl")
    predictions = {r["index"]: f"I think it is {r['answer'][0]}." for r in records}
    ocr = [r for r in records if r["class"] == "OCR"]
    predictions[ocr[0]["index"]] = "something else entirely"
    place = next(r for r in records if r["class"] == "Place")
    missing = [(ocr[1]["index"], ocr[1]["image"]), (place["index"], place["image"])]
    result = evaluate_records(records, predictions, RuleJudge(), missing=missing, model="echo")
    assert result.missing == missing
    assert result.cells["OCR"] == Cell(51, 52) and result.cells["Place"] == Cell(21, 21)
    assert result.overall_cell.total == 300 and result.overall_cell.correct == 299
    assert result.judge["judge_model"] == "rule-v2" and result.judge["prompt_hash"]
    assert len(result.items) == 300 and result.items[0]["correct"] is True
    result.to_csv(tmp_path / "openvqa.csv")
    back = pd.read_csv(tmp_path / "openvqa.csv")
    assert list(back.category) == list(paper.IMAGE_CATEGORIES)
    assert back.correct.sum() == 299 and back.total.sum() == 300 and set(back.judge_model) == {"rule-v2"}
    assert back.set_index("category").missing.to_dict() == {c: int(c in ("OCR", "Place")) for c in paper.IMAGE_CATEGORIES}
    with pytest.raises(ValueError, match=f"index={records[5]['index']}: no prediction"):
        evaluate_records(records, {k: v for k, v in predictions.items() if k != records[5]["index"]}, RuleJudge())


def test_evaluate_video_records_and_list_predictions():
    videos = load("Open_VQA_videos.jsonl")
    result = evaluate_records(videos, ["yes"] * len(videos), RuleJudge())
    assert result.kind == "video" and result.categories == ["Action (Y/N)", "Others"]
    yes_actions = sum(r["answer"][0] == "yes" for r in videos if r["class"] == "Action(Y/N)")
    assert result.cells["Action (Y/N)"] == Cell(yes_actions, 108)
    with pytest.raises(ValueError, match="mix image and video"):
        evaluate_records(videos[:2] + load("Open_VQA_images.jsonl")[:2], ["a"] * 4, RuleJudge())


def test_majority_baseline_uses_the_pool():
    records = [{"index": i, "class": "Color", "image": "x", "question": "colour?", "answer": [a]}
               for i, a in enumerate(["red", "red", "blue", "green"])]
    pool = [{"class": "Color", "image": "x", "answer": ["Blue"]}] * 3 + [{"class": "Color", "image": "x", "answer": ["red"]}]
    assert majority_answers(records) == {"Color": "red"}
    assert majority_baseline(records, RuleJudge()).cells["Color"] == Cell(2, 4)
    pooled = majority_baseline(records, RuleJudge(), pool=pool)
    assert pooled.cells["Color"] == Cell(1, 4)
    assert baselines_frame(pooled).to_dict("records") == [{"kind": "image", "category": "Color", "majority": 0.25}]


def test_seed_summary_and_tables():
    a = OpenVQAResult.from_counts(kind="video", counts={"Action (Y/N)": (60, 100), "Others": (20, 40)}, model="s0")
    b = OpenVQAResult.from_counts(kind="video", counts={"Action (Y/N)": (70, 100), "Others": (30, 40)}, model="s1")
    summary = seed_summary([a, b])
    assert summary.loc["Action (Y/N)", "mean"] == pytest.approx(65.0)
    assert summary.loc["Action (Y/N)", "spread"] == pytest.approx(math.sqrt(50))   # sample std of 60, 70
    assert summary.loc["Overall", "mean"] == pytest.approx((80 / 140 + 100 / 140) * 50)
    one = seed_summary([a])
    assert one.loc["Others", "spread_kind"] == "se" and one.loc["Others", "spread"] == pytest.approx(a.cells["Others"].se)
    table = paper_table([a, b])
    assert table.loc["s1"].tolist() == ["70/100", "30/40", "71.43"]


def test_comparison_with_controls():
    scores = {"majority answer": {"Counting": (10, 40), "Color": (5, 20)},
              "text-only": {"Counting": (12, 40), "Color": (4, 20)},
              "ours": OpenVQAResult.from_counts(kind="image", counts={"Counting": (30, 40), "Color": (5, 20)})}
    table = comparison_table(scores)
    assert list(table.index) == ["Counting", "Color", "Overall"]
    assert table.loc["Counting", "ours"] == 75.0
    assert table.loc["Counting", "ours − majority"] == 50.0 and table.loc["Counting", "ours − blind"] == 45.0
    assert table.loc["Color", "ours − majority"] == 0.0
    assert table.loc["Overall", "ours − blind"] == pytest.approx(100 * 35 / 60 - 100 * 16 / 60)
    assert table.attrs["se"].loc["Counting", "ours"] == pytest.approx(100 * math.sqrt(0.75 * 0.25 / 40))
    text = render_markdown(table)
    assert text.splitlines()[0] == "| category | majority answer | text-only | ours | ours − majority | ours − blind |"
    assert "| Counting | 25.0 | 30.0 | 75.0 | 50.0 | 45.0 |" in text
    assert "color: #cf222e" in style_table(table).to_html()   # a margin of 0 is flagged
    with pytest.raises(ValueError, match="no 'text-only' entry"):
        comparison_table({"majority answer": scores["majority answer"], "ours": scores["ours"]})


def test_yes_no_breakdown_separates_format_from_decision():
    """A described answer counts against the format, not the decision; other parts and categories are
    left out; a category with no yes/no answers has no accuracy."""
    from lynxlib.evaluate.openvqa_tables import yes_no_breakdown

    preds = [{"part": "openvqa", "category": "Reasoning", "prediction": "Yes.", "correct": True},
             {"part": "openvqa", "category": "Reasoning", "prediction": "no, it is red", "correct": False},
             {"part": "openvqa", "category": "Reasoning", "prediction": "stays still", "correct": False},
             {"part": "openvqa", "category": "Reasoning", "prediction": "nothing", "correct": False},
             {"part": "mme", "category": "Reasoning", "prediction": "yes", "correct": True},
             {"part": "openvqa", "category": "Action (Y/N)", "prediction": "moves left", "correct": False}]
    table = yes_no_breakdown(preds, ["Reasoning", "Action (Y/N)"]).set_index("category")
    assert table.loc["Reasoning", "n"] == 4 and table.loc["Reasoning", "yes_no"] == 2
    assert table.loc["Reasoning", "correct_among_yes_no"] == 1
    assert table.loc["Reasoning", "accuracy_among_yes_no"] == 0.5
    assert table.loc["Action (Y/N)", "yes_no"] == 0
    assert math.isnan(table.loc["Action (Y/N)", "accuracy_among_yes_no"])


def test_best_constant_answer_is_the_floor_under_the_rule_judge():
    """A constant that names several answers is right wherever the reference is one of them: the
    majority answer (each answer once here, 1/3) understates what one constant scores under the
    containment rule. A corner is not such a constant: it no longer matches its edges (rule-v2)."""
    from lynxlib.evaluate.openvqa_tables import best_constant_answer

    answer, accuracy = best_constant_answer([["kitchen or platform"], ["kitchen"], ["platform"]])
    assert answer == "kitchen or platform" and accuracy == pytest.approx(100)
    corners = [["right", "to the right", "on the right"], ["top right", "at the top right"], ["left", "on the left"]]
    assert best_constant_answer(corners)[1] == pytest.approx(100 / 3)
    assert best_constant_answer([["yes"], ["no"], ["no"]]) == ("no", pytest.approx(200 / 3))


def test_type_floor_answers_each_question_type_with_its_best_constant():
    """Per (category, type) the best constant: a yes/no type and a free-answer type in one category;
    the floor beats the category's one majority answer, and baselines.csv carries both."""
    answers = [["yes"], ["yes"], ["no"], ["left"], ["left"], ["top left"], ["top"]]
    records = [{"index": i, "class": "Spatial", "image": "x", "question": "where?", "answer": a}
               for i, a in enumerate(answers)]
    qtypes = ["yn", "yn", "yn", "grid", "grid", "grid", "grid"]
    floor = type_floor_baseline(records, RuleJudge(), qtypes=qtypes, kind="image")
    assert floor.cells["Spatial"] == Cell(2 + 2, 7)  # "yes" on yn, "left" on grid ("top left" is not "left")
    majority = majority_baseline(records, RuleJudge(), kind="image")
    assert majority.cells["Spatial"] == Cell(2, 7)  # "yes" everywhere
    assert baselines_frame(majority, floor=floor).to_dict("records") == [
        {"kind": "image", "category": "Spatial", "majority": 2 / 7, "type_floor": 4 / 7}]
    with pytest.raises(ValueError, match="6 question types for 7 records"):
        type_floor_baseline(records, RuleJudge(), qtypes=qtypes[:-1])


def test_rejudged_scores_stored_answers_under_the_current_rules():
    """A corner stored as right for an edge under rule-v1 is wrong now; non-Open-VQA rows pass through."""
    from lynxlib.evaluate.openvqa_tables import rejudged

    rows = [{"part": "openvqa", "prediction": "top left", "references": ["top", "at the top"], "correct": True},
            {"part": "openvqa", "prediction": "at the top", "references": ["top"], "correct": False},
            {"part": "mme", "prediction": "top left", "references": ["top"], "correct": True}]
    assert [r["correct"] for r in rejudged(rows, RuleJudge())] == [False, True, True]
    assert rows[0]["correct"] is True  # the input is not modified


def test_accuracy_by_qtype_reads_video_plans_in_the_papers_category_names():
    """The world's plan names the video category 'Action(Y/N)'; scored predictions say 'Action (Y/N)'."""
    from lynxlib.evaluate.openvqa_tables import accuracy_by_qtype

    plan = [("Action(Y/N)", "moving_yn", "yes"), ("Action(Y/N)", "moving_yn", "no"), ("Others", "motion", None)]
    preds = [{"part": "openvqa", "kind": "video", "uid": f"openvqa/video/{k}", "category": c, "correct": ok,
              "references": [r]}
             for k, (c, ok, r) in enumerate([("Action (Y/N)", True, "yes"), ("Action (Y/N)", False, "no"),
                                              ("Others", True, "left")])]
    table = accuracy_by_qtype(preds, plan, kind="video").set_index("category")
    assert table.loc["Action (Y/N)", "accuracy"] == 50.0 and table.loc["Action (Y/N)", "majority"] == 50.0
    assert table.loc["Others", "n"] == 1
