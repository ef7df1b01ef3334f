"""MME scoring: the official numbers of a real model's result files, the parse rules, the writer."""
from pathlib import Path

import pytest

from lynxlib.evaluate.mme import (COGNITION, PERCEPTION, parse_answer, read_mme_file, score_mme_dir,
                                  score_rows, write_mme_responses)

FIXTURE = Path(__file__).parent / "fixtures" / "mme_lavin"
# MME's official calculation.py on these LaVIN-13B files (fixtures/README.md).
OFFICIAL = {
    "existence": 185.00, "count": 88.33, "position": 63.33, "color": 75.00, "posters": 79.59,
    "celebrity": 47.35, "scene": 136.75, "landmark": 93.50, "artwork": 87.25, "OCR": 107.50,
    "commonsense_reasoning": 87.14, "numerical_calculation": 65.00, "text_translation": 47.50,
    "code_reasoning": 50.00,
}


def test_reproduces_official_lavin_scores():
    report = score_mme_dir(FIXTURE)
    assert report.missing == [] and report.ignored == []
    assert round(report.perception, 2) == 963.61
    assert round(report.cognition, 2) == 249.64
    for name, score in OFFICIAL.items():
        assert round(report.subtasks[name].score, 2) == pytest.approx(score, abs=1e-9), name
    frame = report.to_frame()
    assert list(frame.subtask) == list(PERCEPTION + COGNITION)
    assert frame.n_questions.sum() == 2374 and (frame.n_images * 2 == frame.n_questions).all()
    # commonsense_reasoning has 11 answers that are neither yes nor no in their first 4 characters
    assert report.subtasks["commonsense_reasoning"].n_other == 11


@pytest.mark.parametrize("response,expected", [
    ("yes", "yes"), ("No", "no"), ("Yes, there is a train.", "yes"), ("no, there is not", "no"),
    (" yes", "yes"),            # not stripped, but ' yes' still holds 'yes' in its first 4 characters
    ("  yes", "other"),         # not stripped: '  ye' holds neither
    ("The answer is yes", "other"), ("Not really", "no"), ("eyes", "yes"), ("noyes", "no"),
    ("", "other"), ("YES!", "yes"),
])
def test_parse_answer_official_rules(response, expected):
    assert parse_answer(response) == expected


def test_acc_plus_precision_recall_other(tmp_path):
    rows = [("a.jpg", "q1", "Yes", "yes"), ("a.jpg", "q2", "No", "Yes, it is"),
            ("b.jpg", "q1", "Yes", "maybe so"), ("b.jpg", "q2", "No", "no"),
            ("a.jpg", "q3", "Yes", "yes"), ("a.jpg", "q4", "No", "no")]   # an image may recur in a later pair
    path = write_mme_responses(tmp_path, "existence", rows)
    score = score_rows(read_mme_file(path), subtask="existence")
    assert score.n_images == 3   # pairs are consecutive lines, as the official script chunks them
    assert score.acc == pytest.approx(4 / 6) and score.acc_plus == pytest.approx(1 / 3)
    assert score.score == pytest.approx(100 * (4 / 6 + 1 / 3))
    assert score.precision == pytest.approx(2 / 3)   # 3 predicted yes, 2 right
    assert score.recall == pytest.approx(2 / 3)      # 3 true yes, 2 found
    assert score.n_other == 1


def test_writer_format_and_round_trip(tmp_path):
    rows = [{"image": "x.png", "question": "Is it red?\tPlease answer yes or no.", "answer": "Yes",
             "response": "yes\nit is red"},
            {"image": "x.png", "question": "Is it blue?", "answer": "No", "response": "no"}]
    path = write_mme_responses(tmp_path / "out", "ocr", rows)
    assert path.name == "OCR.txt"
    lines = path.read_text().splitlines()
    assert lines == ["x.png\tIs it red? Please answer yes or no.\tYes\tyes it is red", "x.png\tIs it blue?\tNo\tno"]
    report = score_mme_dir(tmp_path / "out")
    assert report.subtasks["OCR"].score == 200.0
    assert "existence" in report.missing and len(report.missing) == 13
    assert report.perception == 200.0 and report.cognition == 0.0
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic: no temp file left


def test_bad_input_names_file_and_line(tmp_path):
    with pytest.raises(ValueError, match="line 1's 'a.jpg'"):
        write_mme_responses(tmp_path, "count", [("a.jpg", "q", "Yes", "y"), ("b.jpg", "q", "No", "n")])
    with pytest.raises(ValueError, match="ground truth"):
        write_mme_responses(tmp_path, "count", [("a.jpg", "q", "Maybe", "y"), ("a.jpg", "q", "No", "n")])
    with pytest.raises(ValueError, match="unknown MME subtask"):
        write_mme_responses(tmp_path, "counting", [])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "color.txt").write_text("a.jpg\tq\tYes\tyes\na.jpg\tq\tNo\n")
    with pytest.raises(ValueError, match=r"color\.txt:2: expected 4 tab-separated fields"):
        score_mme_dir(bad)
    (bad / "color.txt").write_text("a.jpg\tq\tYes\tyes\nb.jpg\tq\tNo\tno\n")
    with pytest.raises(ValueError, match=r"color\.txt:2: image 'b.jpg'"):
        score_mme_dir(bad)


def test_encodings_and_ignored_files(tmp_path):
    (tmp_path / "posters.txt").write_bytes("tt1.jpg\tCaf\xe9?\tYes\tyes\ntt1.jpg\tNo\xeblle?\tNo\tno\n".encode("latin-1"))
    (tmp_path / "scene.txt").write_bytes("\ufeffp.jpg\tq\tYes\tno\np.jpg\tq\tNo\tno\n".encode("utf-8"))
    (tmp_path / "notes.txt").write_text("not a subtask")
    report = score_mme_dir(tmp_path)
    assert report.encodings == {"posters": "latin-1", "scene": "utf-8"}
    assert report.subtasks["posters"].score == 200.0
    assert report.subtasks["scene"].score == 50.0   # acc 1/2, acc+ 0
    assert report.ignored == ["notes.txt"]
