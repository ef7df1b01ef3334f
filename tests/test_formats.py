"""Real formats: round trips on the released files and clear errors on malformed records."""
import json
from collections import Counter
from pathlib import Path

import pytest

from lynxlib.formats import (FormatError, MMERow, llava_record, llava_turns, read_llava, read_mme_questions,
                             read_mme_results, read_open_vqa, write_llava, write_mme_questions, write_mme_results,
                             write_open_vqa)

FIXTURES = Path(__file__).parent / "fixtures"
IMAGES = FIXTURES / "open_vqa" / "Open_VQA_images.jsonl"
VIDEOS = FIXTURES / "open_vqa" / "Open_VQA_videos.jsonl"
MME_FILES = sorted((FIXTURES / "mme_lavin").glob("*.txt"))


def test_open_vqa_fixtures_counts_and_classes():
    images, videos = read_open_vqa(IMAGES), read_open_vqa(VIDEOS)
    assert len(images) == 302 and len(videos) == 148
    assert Counter(r["class"] for r in images) == {"OCR": 53, "Counting": 37, "Reasoning": 31, "Place": 22,
                                                    "Color": 30, "Spatial": 15, "Action": 20, "Others": 94}
    assert Counter(r["class"] for r in videos) == {"Action(Y/N)": 108, "Others": 40}
    assert all("image" in r for r in images) and all("video" in r for r in videos)


@pytest.mark.parametrize("path", [IMAGES, VIDEOS])
def test_open_vqa_round_trip_is_byte_identical(path, tmp_path):
    records = read_open_vqa(path)
    out = write_open_vqa(tmp_path / path.name, records)
    assert read_open_vqa(out) == records
    assert out.read_bytes() == path.read_bytes()


def test_mme_fixtures_round_trip(tmp_path):
    assert len(MME_FILES) == 14
    for path in MME_FILES:
        rows = read_mme_results(path)
        assert rows and all(r.ground_truth in ("Yes", "No") and r.response for r in rows)
        assert Counter(r.ground_truth for r in rows)["Yes"] == len(rows) // 2
        out = write_mme_results(tmp_path / path.name, rows)
        assert read_mme_results(out) == rows and out.read_bytes() == path.read_bytes()
    questions = read_mme_questions(write_mme_questions(tmp_path / "q.txt", read_mme_results(MME_FILES[0])))
    assert all(r.response is None for r in questions)
    assert (tmp_path / "q.txt").read_text().splitlines()[0].count("\t") == 2


def test_mme_writer_flattens_response_whitespace(tmp_path):
    rows = [MMERow("a.png", "Is it red? Please answer yes or no.", "Yes", "yes,\tit is\nred")]
    assert read_mme_results(write_mme_results(tmp_path / "r.txt", rows))[0].response == "yes, it is red"
    with pytest.raises(FormatError, match="no response"):
        write_mme_results(tmp_path / "r.txt", [MMERow("a.png", "Q?", "Yes")])
    with pytest.raises(FormatError, match=r"line 1: ground truth must be Yes or No"):
        write_mme_questions(tmp_path / "q.txt", [MMERow("a.png", "Q?", "yes")])


@pytest.mark.parametrize("line, message", [
    ('{"question": "q", "answer": ["a"], "index": 1, "class": "OCR"', "line 2: bad JSON"),
    ('{"answer": ["a"], "index": 1, "class": "OCR", "image": "x.jpg"}', "line 2: missing key 'question'"),
    ('{"question": "q", "answer": "a", "index": 1, "class": "OCR", "image": "x.jpg"}',
     "line 2: key 'answer' must be list"),
    ('{"question": "q", "answer": ["a"], "index": "1", "class": "OCR", "image": "x.jpg"}',
     "line 2: key 'index' must be int"),
    ('{"question": "q", "answer": ["a"], "index": 1, "class": "OCR"}', "line 2: expected exactly one of"),
    ('[1, 2]', "line 2: expected a JSON object"),
])
def test_open_vqa_malformed_records(tmp_path, line, message):
    good = json.dumps({"question": "q", "answer": ["a"], "index": 0, "class": "OCR", "image": "x.jpg"})
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(FormatError, match=message) as err:
        read_open_vqa(path)
    assert err.value.path == path and err.value.line == 2 and str(path) in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("a.png\tQ? Please answer yes or no.\tYes\n", "line 1: expected 4 tab-separated fields, got 3"),
    ("a.png\tQ?\tYes\tyes\textra\n", "line 1: expected 4 tab-separated fields, got 5"),
    ("a.png\tQ?\tMaybe\tyes\n", "line 1: ground truth must be Yes or No"),
])
def test_mme_malformed_lines(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        read_mme_results(path)


def test_llava_round_trip_and_helpers(tmp_path):
    records = [llava_record("0", [("What colour is the circle?", "red"), ("And the star?", "blue")], "img/0.png"),
               llava_record("1", [("What is two plus three?", "five")])]
    path = write_llava(tmp_path / "llava.json", records)
    assert read_llava(path) == records
    assert records[0]["conversations"][0]["value"].startswith("<image>\n")
    assert llava_turns(records[0]) == (("What colour is the circle?", "red"), ("And the star?", "blue"))
    assert "image" not in records[1]


@pytest.mark.parametrize("record, message", [
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, "missing key 'id'"),
    ({"id": "x", "conversations": [{"from": "gpt", "value": "q"}, {"from": "human", "value": "a"}]},
     r"conversations\[0\]\['from'\] must be 'human'"),
    ({"id": "x", "conversations": [{"from": "human", "value": "q"}]}, "human/gpt pairs"),
    ({"id": "x", "image": 3, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
     "key 'image' must be str"),
])
def test_llava_malformed_records_name_their_line(tmp_path, record, message):
    good = llava_record("ok", [("q", "a")])
    text = json.dumps([good, record], indent=2)
    path = tmp_path / "bad.json"
    path.write_text(text)
    start_line = [i for i, line in enumerate(text.split("\n"), start=1) if line == "  {"][1]  # the 2nd record
    with pytest.raises(FormatError, match=message) as err:
        read_llava(path)
    assert err.value.line == start_line


def test_llava_bad_json_reports_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"id": "a",\n   "conversations": [}\n]\n')
    with pytest.raises(FormatError, match="line 3: bad JSON"):
        read_llava(path)
    path.write_text('{"id": "a"}')
    with pytest.raises(FormatError, match="expected a JSON list"):
        read_llava(path)
