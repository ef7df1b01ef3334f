"""Answer judges for open-ended VQA: the offline rule judge, the LLM judge, caching and reports.

A judge answers "does this prediction imply one of these references?" with a :class:`Verdict`.
``correct`` is None when the judge could not decide (a malformed LLM reply, a failed request): such
items are counted and reported, never silently scored. :func:`judge_items` runs a judge over many
items with an optional on-disk cache keyed by judge name, model, prompt hash and the item itself.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from lynxlib.evaluate.text import canonical_tokens, contains_phrase, leading_verdict, normalise, yes_no
from lynxlib.runs import write_json

RULE_VERSIONS = {  # what each version of the rule judge does; its hash names the judge's verdict cache
    "rule-v1": "rule-v1: normalise, number words, synonyms, leading yes/no, whole-phrase containment",
    "rule-v2": "rule-v2: normalise, number words, synonyms, corners as one term, leading yes/no, "
               "whole-phrase containment",
}


@dataclass(frozen=True)
class Verdict:
    """``correct``: True / False, or None when undecided. ``status``: 'ok', 'malformed' (a reply
    without a Yes/No or with bad JSON) or 'failed' (no reply after retries)."""

    correct: bool | None
    raw: str
    status: str = "ok"
    cached: bool = False


@runtime_checkable
class Judge(Protocol):
    """Anything with ``name``, ``model``, ``prompt_hash`` and a keyword-only ``judge`` method."""

    name: str
    model: str
    prompt_hash: str

    def judge(self, *, question: str, prediction: str, references: Sequence[str]) -> Verdict: ...


def sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _alternatives(reference: str) -> list[str]:
    """A reference and, for Open-VQA's 'a or b or c' answers, each alternative."""
    parts = [p.strip() for p in str(reference).split(" or ") if p.strip()]
    return [str(reference)] + (parts if len(parts) > 1 else [])


class RuleJudge:
    """Offline judge: normalised whole-phrase matching with the world's numbers and synonyms.

    * yes/no references: the prediction's leading verdict decides ('Yes, ...', 'Nope'); without one,
      the reference word must occur and its opposite must not;
    * other references (and each alternative of 'a or b'): the reference's canonical tokens must
      occur in the prediction's as a whole word or phrase ('2' matches 'two circles').
    Negation inside a sentence ('it is not red') is not understood: use the LLM judge for that.
    """

    name = "rule"

    def __init__(self, version: str = "rule-v2"):
        """``version``: "rule-v2" (the default); "rule-v1" only to re-score stored evaluations as they
        were judged (v1 credited a corner, "top left", wherever the answer was "top" or "left")."""
        if version not in RULE_VERSIONS:
            raise ValueError(f"rule judge version {version!r} is not one of {sorted(RULE_VERSIONS)}")
        self.model, self.prompt_hash = version, sha(RULE_VERSIONS[version])
        self._corners = version != "rule-v1"

    def judge(self, *, question: str, prediction: str, references: Sequence[str]) -> Verdict:
        refs = [references] if isinstance(references, str) else list(references)
        if not refs:
            raise ValueError(f"no references for question {question!r}")
        pred = canonical_tokens(prediction, corners=self._corners)
        lead = leading_verdict(prediction)
        plain = normalise(prediction).split()
        for ref in refs:
            for alt in _alternatives(ref):
                tokens = canonical_tokens(alt, corners=self._corners)
                want = yes_no(tokens[0]) if len(tokens) == 1 else None
                if want is not None:
                    other = "no" if want == "yes" else "yes"
                    ok = (lead == want) if lead else (want in plain and other not in plain)
                else:
                    ok = contains_phrase(pred, tokens)
                if ok:
                    return Verdict(True, f"rule: matched {alt!r}")
        return Verdict(False, "rule: no reference matched")


@dataclass
class JudgeReport:
    """Per-item verdicts of one judge run, with what the results files must record."""

    judge: str
    model: str
    prompt_hash: str
    ids: list[Any]
    verdicts: list[Verdict]
    n_cache_hits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.verdicts)

    @property
    def n_correct(self) -> int:
        return sum(v.correct is True for v in self.verdicts)

    @property
    def n_malformed(self) -> int:
        return sum(v.status == "malformed" for v in self.verdicts)

    @property
    def n_failed(self) -> int:
        return sum(v.status == "failed" for v in self.verdicts)

    @property
    def n_undecided(self) -> int:
        return sum(v.correct is None for v in self.verdicts)

    @property
    def accuracy(self) -> float | None:
        """Correct / decided items (None when nothing was decided); see ``n_undecided``."""
        decided = self.n_items - self.n_undecided
        return self.n_correct / decided if decided else None

    def meta(self) -> dict[str, Any]:
        """Judge identity and counts: goes into every results file."""
        return {"judge": self.judge, "judge_model": self.model, "prompt_hash": self.prompt_hash,
                "n_items": self.n_items, "n_correct": self.n_correct, "n_malformed": self.n_malformed,
                "n_failed": self.n_failed, "n_cache_hits": self.n_cache_hits, **self.extra}

    def to_frame(self):
        import pandas as pd

        rows = [{"id": i, **asdict(v)} for i, v in zip(self.ids, self.verdicts)]
        frame = pd.DataFrame(rows, columns=["id", "correct", "raw", "status", "cached"])
        frame["judge_model"], frame["prompt_hash"] = self.model, self.prompt_hash
        return frame

    def write_json(self, path: str | Path) -> Path:
        items = [{"id": i, **asdict(v)} for i, v in zip(self.ids, self.verdicts)]
        return write_json(path, {**self.meta(), "items": items})


def item_hash(*, question: str, prediction: str, references: Sequence[str]) -> str:
    return sha(json.dumps([question, prediction, list(references)], ensure_ascii=False), 32)


class VerdictCache:
    """One json file per verdict under ``folder``, named by the hash of (judge, model, prompt hash,
    item). Only decided verdicts are stored, so malformed or failed items are asked again next run.
    Files hold the item and the verdict, never credentials."""

    def __init__(self, folder: str | Path, judge: Judge):
        self.folder = Path(folder)
        self.judge = judge

    def key(self, item: Mapping[str, Any]) -> str:
        parts = [self.judge.name, self.judge.model, self.judge.prompt_hash, item_hash(**item)]
        return sha("|".join(parts), 40)

    def get(self, item: Mapping[str, Any]) -> Verdict | None:
        path = self.folder / f"{self.key(item)}.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return Verdict(data["correct"], data["raw"], data.get("status", "ok"), cached=True)
        except (ValueError, KeyError) as err:
            raise ValueError(f"{path}: corrupt verdict cache entry ({err}); delete it to re-judge") from None

    def put(self, item: Mapping[str, Any], verdict: Verdict) -> None:
        if verdict.correct is None:
            return
        record = {"judge": self.judge.name, "judge_model": self.judge.model,
                  "prompt_hash": self.judge.prompt_hash, **item, "correct": verdict.correct,
                  "raw": verdict.raw, "status": verdict.status}
        write_json(self.folder / f"{self.key(item)}.json", record)


def _as_item(item: Mapping[str, Any], index: int) -> tuple[Any, dict[str, Any]]:
    if not isinstance(item, Mapping):
        raise TypeError(f"item {index}: expected a mapping with question/prediction/references, "
                        f"got {type(item).__name__}")
    missing = [k for k in ("question", "prediction", "references") if k not in item]
    if missing:
        raise ValueError(f"item {index} (id={item.get('id', index)!r}): missing key(s) {missing}")
    refs = item["references"]
    refs = [refs] if isinstance(refs, str) else [str(r) for r in refs]
    if not refs:
        raise ValueError(f"item {index} (id={item.get('id', index)!r}): empty references")
    payload = {"question": str(item["question"]), "prediction": str(item["prediction"]), "references": refs}
    return item.get("id", index), payload


def judge_items(judge: Judge, items: Sequence[Mapping[str, Any]], *,
                cache_dir: str | Path | None = None) -> JudgeReport:
    """Judge every item (mappings with question, prediction, references and optional id)."""
    cache = VerdictCache(cache_dir, judge) if cache_dir is not None else None
    ids, verdicts, hits = [], [], 0
    for index, raw_item in enumerate(items):
        item_id, item = _as_item(raw_item, index)
        verdict = cache.get(item) if cache else None
        if verdict is not None:
            hits += 1
        else:
            verdict = judge.judge(**item)
            if cache:
                cache.put(item, verdict)
        ids.append(item_id)
        verdicts.append(verdict)
    return JudgeReport(judge=judge.name, model=judge.model, prompt_hash=judge.prompt_hash,
                       ids=ids, verdicts=verdicts, n_cache_hits=hits)


def make_judge(kind: str = "rule", **kwargs: Any) -> Judge:
    """'rule' (offline) or 'llm' (OpenAI-compatible endpoint from ``LYNX_JUDGE_*`` variables)."""
    if kind == "rule":
        return RuleJudge()
    if kind == "llm":
        from lynxlib.evaluate.llm_judge import LLMJudge

        return LLMJudge(**kwargs)
    raise ValueError(f"unknown judge {kind!r}: expected 'rule' or 'llm'")


def __getattr__(name: str):  # LLMJudge lives in its own module; re-exported lazily
    if name in ("LLMJudge", "PAPER_PROMPT"):
        from lynxlib.evaluate import llm_judge

        return getattr(llm_judge, name)
    raise AttributeError(name)
