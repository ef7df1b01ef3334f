"""Judges: the offline rule judge, and the LLM judge against a local OpenAI-compatible server."""
import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lynxlib.evaluate.judges import LLMJudge, RuleJudge, Verdict, judge_items, make_judge
from lynxlib.evaluate.llm_judge import PAPER_PROMPT, chat_url, parse_reply

KEY = "sk-test-SECRET-4242"


@pytest.mark.parametrize("prediction,references,expected", [
    ("Two circles.", ["2"], True),
    ("There are 3 stars", ["three"], True),
    ("There are 13 stars", ["3"], False),
    ("Yes, there is a red circle.", ["yes"], True),
    ("No, there is not.", ["yes"], False),
    ("Nope", ["no"], True),
    ("Correct, it is.", ["yes"], True),
    ("I think the answer is yes", ["yes"], True),        # no leading verdict: contained, opposite absent
    ("Yes and no", ["no"], False),                       # leads with the opposite
    ("there is no dog and yes a cat", ["yes"], False),   # no leading verdict, both present
    ("It is a violet square", ["purple"], True),         # synonym
    ("The shape is round", ["circle"], True),
    ("They sit in the harbour", ["harbor"], True),
    ("redder than before", ["red"], False),              # whole words only
    ("The scene is a kitchen.", ["platform or kitchen"], True),   # Open-VQA 'a or b' answers
    ("The Cat!", ["cat"], True),
    ("an apple", ["the apple"], True),
    ("Red", ["blue", "red"], True),
    ("blue", ["red"], False),
    ("two crosses", ["2 cross"], True),                  # plural shapes singularised
    ("top left", ["top", "at the top", "upper"], False),  # a corner is not its edge
    ("It is at the upper-left.", ["left", "on the left"], False),
    ("at the top left", ["top left", "upper left"], True),
    ("upper left", ["top left"], True),                  # upper/lower corners are top/bottom corners
    ("The star is at the bottom right", ["bottom-right"], True),
    ("The star is at the top, on the left", ["top"], True),   # an edge named, then a side: not a corner
])
def test_rule_judge(prediction, references, expected):
    verdict = RuleJudge().judge(question="q?", prediction=prediction, references=references)
    assert verdict.correct is expected and verdict.status == "ok"


def test_rule_judge_versions():
    """rule-v1 is kept only to re-score stored runs as they were judged: it credits a corner for its
    edge; each version names its own verdict cache."""
    v1, v2 = RuleJudge("rule-v1"), RuleJudge()
    assert v1.judge(question="q", prediction="top left", references=["top"]).correct is True
    assert v2.judge(question="q", prediction="top left", references=["top"]).correct is False
    assert (v1.model, v2.model) == ("rule-v1", "rule-v2") and v1.prompt_hash != v2.prompt_hash
    with pytest.raises(ValueError, match="'rule-v3' is not one of"):
        RuleJudge("rule-v3")


def test_rule_judge_items_and_errors(tmp_path):
    items = [{"id": "a", "question": "q", "prediction": "two", "references": ["2"]},
             {"id": "b", "question": "q", "prediction": "red", "references": "blue"}]
    report = judge_items(RuleJudge(), items, cache_dir=tmp_path)
    assert [v.correct for v in report.verdicts] == [True, False] and report.ids == ["a", "b"]
    assert report.accuracy == 0.5 and report.meta()["judge_model"] == "rule-v2"
    again = judge_items(RuleJudge(), items, cache_dir=tmp_path)
    assert again.n_cache_hits == 2 and [v.correct for v in again.verdicts] == [True, False]
    with pytest.raises(ValueError, match=r"item 1 \(id='x'\): missing key\(s\) \['prediction'\]"):
        judge_items(RuleJudge(), [items[0], {"id": "x", "question": "q", "references": ["a"]}])
    with pytest.raises(ValueError, match="no references"):
        RuleJudge().judge(question="q", prediction="p", references=[])


# --- a scripted OpenAI-compatible server -----------------------------------------------------------

class Server:
    """``script``: actions consumed one per request: ('reply', text) | ('sleep', s, text) |
    ('status', code) | ('raw', body). When the script is empty, replies 'Yes'."""

    def __init__(self):
        self.script, self.requests = [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                action = outer.script.pop(0) if outer.script else ("reply", "Yes")
                try:
                    self.act(action)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def act(self, action):
                if action[0] == "sleep":
                    time.sleep(action[1])
                    action = ("reply", action[2])
                if action[0] == "status":
                    self.send_error(action[1])
                    return
                payload = action[1] if action[0] == "raw" else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": action[1]}}]})
                data = payload.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def llm(server, **kwargs):
    opts = dict(base_url=server.url, model="judge-model-1", api_key=KEY, timeout=0.5, max_retries=2, backoff=0.01)
    return LLMJudge(**(opts | kwargs))


def test_llm_judge_protocol_and_prompt(server):
    server.script = [("reply", "Yes"), ("reply", "No.")]
    judge = llm(server)
    yes = judge.judge(question="What colour?", prediction="It is red", references=["red", "scarlet"])
    no = judge.judge(question="How many?", prediction="three", references=["2"])
    assert (yes.correct, yes.status, no.correct) == (True, "ok", False)
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {KEY}"
    assert first["body"]["temperature"] == 0 and first["body"]["model"] == "judge-model-1"
    assert first["body"]["messages"] == [{"role": "user", "content":
        'Given the question "What colour?", does the answer "It is red" imply the answer "red or scarlet"? '
        'Answer with Yes or No.'}]
    assert KEY not in repr(judge) and KEY not in json.dumps(judge.describe())
    assert KEY not in json.dumps(vars(judge), default=str)
    assert pickle.loads(pickle.dumps(judge))._key.value == KEY   # picklable for worker processes


def test_llm_judge_retries_timeout_and_5xx(server):
    server.script = [("sleep", 0.8, "Yes"), ("reply", "Yes")]
    judge = llm(server, timeout=0.3)
    assert judge.judge(question="q", prediction="p", references=["r"]).correct is True
    assert judge.n_requests == 2
    server.script = [("status", 500), ("reply", "No")]
    judge = llm(server)
    assert judge.judge(question="q", prediction="p", references=["r"]).correct is False
    assert judge.n_requests == 2


def test_llm_judge_failures_are_reported_not_scored(server, tmp_path):
    server.script = [("reply", "Maybe, it depends"), ("raw", "{not json"), ("status", 503), ("status", 503),
                     ("status", 503), ("status", 400), ("reply", "yes")]
    judge = llm(server)
    items = [{"question": f"q{i}", "prediction": "p", "references": ["r"]} for i in range(4)]
    report = judge_items(judge, items, cache_dir=tmp_path)
    assert [v.status for v in report.verdicts] == ["malformed", "malformed", "failed", "failed"]
    assert all(v.correct is None for v in report.verdicts)
    assert (report.n_malformed, report.n_failed, report.n_correct, report.accuracy) == (2, 2, 0, None)
    assert len(server.requests) == 6     # 503 retried max_retries=2 times; 400 not retried
    assert "HTTP 400" in report.verdicts[3].raw
    assert not list(tmp_path.glob("*.json"))   # undecided verdicts are not cached


def test_llm_judge_cache_hits_and_key_never_written(server, tmp_path):
    items = [{"id": i, "question": "Is it red?", "prediction": f"answer {i}", "references": ["yes"]} for i in range(3)]
    server.script = [("reply", "Yes"), ("reply", "No"), ("reply", "Yes")]
    first = judge_items(llm(server), items, cache_dir=tmp_path / "cache")
    assert [v.correct for v in first.verdicts] == [True, False, True] and len(server.requests) == 3
    second = judge_items(llm(server), items, cache_dir=tmp_path / "cache")
    assert len(server.requests) == 3          # the server saw no new request
    assert second.n_cache_hits == 3 and [v.correct for v in second.verdicts] == [True, False, True]
    assert all(v.cached for v in second.verdicts)
    other = judge_items(llm(server, model="judge-model-2"), items[:1], cache_dir=tmp_path / "cache")
    assert other.n_cache_hits == 0 and len(server.requests) == 4   # keyed by judge model
    first.write_json(tmp_path / "report.json")
    meta = json.loads((tmp_path / "report.json").read_text())
    assert meta["judge_model"] == "judge-model-1" and meta["prompt_hash"] == llm(server).prompt_hash
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(), path


def test_llm_judge_configuration_from_environment():
    env = {"LYNX_JUDGE_BASE_URL": "http://127.0.0.1:9/v1", "LYNX_JUDGE_MODEL": "m", "LYNX_JUDGE_API_KEY": KEY}
    judge = LLMJudge(env=env)
    assert judge.url == "http://127.0.0.1:9/v1/chat/completions" and judge.model == "m"
    with pytest.raises(ValueError, match="LYNX_JUDGE_MODEL"):
        LLMJudge(env={"LYNX_JUDGE_BASE_URL": "http://x"})
    with pytest.raises(ValueError, match="LYNX_JUDGE_BASE_URL"):
        LLMJudge(env={})
    assert chat_url("https://api.example.com") == "https://api.example.com/v1/chat/completions"
    assert isinstance(make_judge("rule"), RuleJudge)
    assert LLMJudge(env=env).prompt_hash != LLMJudge(env=env, prompt=PAPER_PROMPT + " ").prompt_hash


def test_parse_reply():
    body = lambda text: json.dumps({"choices": [{"message": {"content": text}}]})  # noqa: E731
    assert parse_reply(body("**Yes**, it does.")) == Verdict(True, "**Yes**, it does.")
    assert parse_reply(body("no")).correct is False
    assert parse_reply(body("Yesterday")).status == "malformed"
    assert parse_reply('{"choices": []}').status == "malformed"
