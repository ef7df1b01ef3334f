"""Run a trained model over every evaluation set and write the eval tables (one folder per run).

:func:`evaluate_model` generates answers with :func:`lynxlib.inference.generate_answers` (batched,
left-padded, greedy unless ``generation.num_beams`` > 1, the chat template ``generation.template``) and
scores them with the evaluation modules. It writes, atomically, into ``out_dir``:

* ``openvqa.csv``: kind, category, correct, total, undecided, missing, accuracy, se, judge columns (one row
  per category; Overall is pooled by summing the cells); ``baselines.csv``: kind, category, majority (the
  majority-answer baseline as a fraction, scored on the evaluation records themselves: an optimistic
  bound, since their answers are balanced) and, on a generated world under the rule judge, type_floor
  (the best constant answer per question type: what the question's wording alone reaches);
  ``judge_cache/``: the judge's verdicts;
* ``mme/<subtask>.txt`` in MME's result format, scored by the official rules into ``mme.csv``;
* ``instruct.csv``: style, n, mean_words, std_words, compliance, accuracy under the held-out styles;
  ``phrasings.csv``: accuracy on trained vs held-out question phrasings (paired questions);
* ``owleval.csv``: per OwlEval-mini prompt, correctness and richness against the scene graph, words,
  distinct-2 (answers may be ``OWL_LENGTH`` x ``generation.max_new_tokens`` tokens long);
* ``predictions.jsonl``: every generated answer with its uid, question and verdict;
* ``summary.json`` last: headline numbers, judge model and prompt hash, item counts, wall time per part.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from lynxlib import inference
from lynxlib.data import PromptFormatter
from lynxlib.evaluate import sets
from lynxlib.evaluate.baselines import baselines_frame, majority_baseline, type_floor_baseline
from lynxlib.evaluate.instruct import instruct_table, phrasing_accuracy, phrasing_table
from lynxlib.evaluate.judges import Judge, RuleJudge, judge_items, make_judge
from lynxlib.evaluate.mme import score_mme_dir, write_mme_responses
from lynxlib.evaluate.openvqa import evaluate_records
from lynxlib.evaluate.owleval import aggregate, owleval_frame, score_text
from lynxlib.runs import atomic_write_text, show_progress, write_json

PARTS = ("openvqa", "mme", "instruct", "owleval")
PART_SPLITS = {"openvqa": "open_vqa_mini", "mme": "mme_mini", "instruct": "eval", "owleval": "owleval_mini"}
OWL_LENGTH = 2   # OwlEval answers are open-ended: twice the generation budget


@dataclass
class EvalSummary:
    """What ``summary.json`` holds (see the module doc for the files beside it)."""

    out_dir: str
    model: str
    judge: dict[str, str]
    resolution: int
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # headline numbers: Open-VQA %, MME 0-200, else 0-1
    counts: dict[str, int] = field(default_factory=dict)            # part -> generated answers
    wall_s: dict[str, float] = field(default_factory=dict)          # part -> seconds
    files: list[str] = field(default_factory=list)                  # written, relative to out_dir

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> None)."""
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@dataclass
class _Run:
    """The shared context of one evaluation: model, prompt format, visuals per split, judge, outputs."""

    cfg: Any
    model: Any
    tokenizer: Any
    world: Any
    visuals: Mapping[str, Any]
    judge: Judge
    out_dir: Path
    name: str
    predictions: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def generate(self, items: Sequence[inference.PromptItem], *, split: str, desc: str, **overrides) -> list[str]:
        gen = self.cfg.generation
        formatter = PromptFormatter(tokenizer=self.tokenizer, template=gen.template,
                                    num_image_tokens=self.model.num_image_tokens, max_len=self.cfg.instruct.max_seq_len)
        kwargs = {"max_new_tokens": gen.max_new_tokens, "num_beams": gen.num_beams} | overrides
        return inference.generate_answers(self.model, tokenizer=self.tokenizer, formatter=formatter, items=items,
                                          visuals=self.visuals[split], batch_size=self.cfg.eval.batch_size, desc=desc,
                                          stop=gen.template.split("{question}")[0].strip() or None, **kwargs)

    def judge_all(self, items: Sequence[Mapping[str, Any]]):
        return judge_items(self.judge, items, cache_dir=self.out_dir / "judge_cache")

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        atomic_write_text(self.out_dir / name, frame.to_csv(index=False))
        self.files.append(name)


# ------------------------------------------------------------------------------------------ parts
def _type_floor(run: _Run, records: list[dict], kind: str):
    """The question-type floor, where the world knows each item's type (the generated worlds) and the
    judge is free to call once per candidate and item (the rule judge); else None."""
    if not hasattr(run.world, "open_vqa_qtypes") or not isinstance(run.judge, RuleJudge):
        return None
    return type_floor_baseline(records, run.judge, qtypes=run.world.open_vqa_qtypes(kind), kind=kind)


def run_openvqa(run: _Run) -> dict[str, Any]:
    """Open-VQA-mini image and video: answers, judged cells, majority baselines."""
    frames, baselines, out = [], [], {}
    for kind in ("image", "video"):
        records = run.world.open_vqa(kind)
        if not records:
            continue
        answers = run.generate(sets.open_vqa_items(records, kind=kind), split="open_vqa_mini", desc=f"Open-VQA {kind}")
        result = evaluate_records(records, {r["index"]: a for r, a in zip(records, answers)}, run.judge,
                                  cache_dir=run.out_dir / "judge_cache", model=run.name, kind=kind)
        base = majority_baseline(records, run.judge, kind=kind)
        frames.append(result.to_frame())
        baselines.append(baselines_frame(base, floor=_type_floor(run, records, kind)))
        run.predictions += [{"part": "openvqa", "uid": f"openvqa/{kind}/{it['id']}", "kind": kind,
                             **{k: it[k] for k in ("category", "question", "references", "prediction", "correct")}}
                            for it in result.items]
        cell = result.overall_cell
        out[kind] = {"overall": result.overall, "overall_se": result.overall_se, "correct": cell.correct,
                     "total": cell.total, "undecided": cell.undecided, "majority_overall": base.overall}
    run.write_csv("openvqa.csv", pd.concat(frames, ignore_index=True))
    run.write_csv("baselines.csv", pd.concat(baselines, ignore_index=True))
    return out


def run_mme(run: _Run) -> dict[str, Any]:
    """MME-mini: answers written as MME result files under ``mme/``, scored by the official rules."""
    rows = sets.mme_rows(run.world)
    answers = iter(run.generate(sets.mme_items(rows), split="mme_mini", desc="MME"))
    folder = run.out_dir / "mme"
    for stale in folder.glob("*.txt") if folder.is_dir() else ():
        if stale.stem not in rows:   # a subtask this world does not ask (an earlier run's file)
            stale.unlink()
    for subtask, subtask_rows in rows.items():
        filled = [{**r, "response": next(answers)} for r in subtask_rows]
        write_mme_responses(folder, subtask, filled)
        run.files.append(f"mme/{subtask}.txt")
        run.predictions += [{"part": "mme", "uid": f"mme/{subtask}/{i}", "kind": "image", "category": subtask,
                             "question": r["question"], "references": [r["answer"]], "prediction": r["response"]}
                            for i, r in enumerate(filled)]
    report = score_mme_dir(folder)
    report.to_csv(run.out_dir / "mme.csv")
    run.files.append("mme.csv")
    return report.summary()


def _style_frame(samples: Sequence, answers: Sequence[str], verdicts: Sequence) -> pd.DataFrame:
    """instruct.csv: :func:`instruct_table` plus each style's accuracy (judged against the references)."""
    table = instruct_table([{"style": s.style, "response": a} for s, a in zip(samples, answers)])
    correct = pd.DataFrame({"style": [s.style for s in samples], "accuracy": [v.correct is True for v in verdicts]})
    return table.merge(correct.groupby("style", as_index=False)["accuracy"].mean(), on="style", how="left")


def run_instruct(run: _Run, *, per_style: int, pairs: int) -> dict[str, Any]:
    """Held-out answer styles (length, compliance) and trained vs held-out phrasings (accuracy)."""
    styled = sets.style_samples(run.world, per_style=per_style)
    phrased = sets.phrasing_samples(run.world, pairs=pairs)
    items = sets.sample_items(styled, prefix="style", key="style") + sets.sample_items(phrased, prefix="phrasing",
                                                                                        key="phrasing")
    samples = list(styled) + list(phrased)
    answers = run.generate(items, split="eval", desc="instructions")
    report = run.judge_all([{"id": it.uid, "question": s.question, "prediction": a, "references": list(s.references)}
                            for it, s, a in zip(items, samples, answers)])
    n = len(styled)
    styles = _style_frame(styled, answers[:n], report.verdicts[:n])
    run.write_csv("instruct.csv", styles)
    rows = [{"phrasing": s.phrasing, "correct": v.correct} for s, v in zip(phrased, report.verdicts[n:])]
    run.write_csv("phrasings.csv", phrasing_table({run.name: rows}).reset_index())
    run.predictions += [{"part": "style" if i < n else "phrasing", "uid": it.uid, "kind": s.visual_kind,
                         "category": s.style if i < n else s.phrasing, "question": s.question,
                         "references": list(s.references), "prediction": a, "correct": v.correct}
                        for i, (it, s, a, v) in enumerate(zip(items, samples, answers, report.verdicts))]
    return {"styles": styles.set_index("style").to_dict("index"), "phrasing": asdict(phrasing_accuracy(rows))}


def run_owleval(run: _Run) -> dict[str, Any]:
    """OwlEval-mini: long answers scored against each scene graph."""
    records = run.world.owleval()
    answers = run.generate(sets.owleval_items(records), split="owleval_mini", desc="OwlEval",
                           max_new_tokens=OWL_LENGTH * run.cfg.generation.max_new_tokens)
    facts = [sets.owl_facts(r["scene"]) for r in records]
    frame = owleval_frame(answers, facts, item_ids=[r["index"] for r in records])
    frame.insert(1, "prompt", [r["kind"] for r in records])
    run.write_csv("owleval.csv", frame)
    run.predictions += [{"part": "owleval", "uid": f"owleval/{r['index']}", "kind": "image", "category": r["kind"],
                         "question": r["question"], "references": [], "prediction": a}
                        for r, a in zip(records, answers)]
    scores = [score_text(a, f) for a, f in zip(answers, facts)]
    return aggregate({run.name: scores}).iloc[0].to_dict()


# ------------------------------------------------------------------------------------------ entry point
def evaluate_model(cfg, *, model, tokenizer, world, out_dir: str | Path, judge: Judge | None = None,
                   visuals: Mapping[str, Any] | None = None, cache=None, parts: Sequence[str] = PARTS,
                   style_items: int | None = None, phrasing_pairs: int | None = None,
                   name: str | None = None) -> EvalSummary:
    """Evaluate ``model`` (a LynxModel) on ``world``'s evaluation sets (a :class:`~lynxlib.world.WorldStore`)
    and write the eval folder ``out_dir`` (module doc).

    ``judge``: default ``make_judge(cfg.eval.judge)``. ``visuals``: {split: (kind, indices) -> inputs}
    overriding the world's arrays at ``cfg.eval.resolution`` (:func:`lynxlib.evaluate.sets.eval_visuals`,
    through the feature ``cache`` when given). ``style_items`` per held-out style and ``phrasing_pairs``
    default to the world's ``eval_scenes``. ``parts``: a subset of :data:`PARTS`.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown eval parts {sorted(unknown)}; expected some of {PARTS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = sets.resolution_size(world, cfg.eval.resolution)
    model.set_resolution(size)
    if visuals is None:
        visuals = sets.eval_visuals(world, size=size, cache=cache, tower=getattr(model, "tower", None))
    lacking = sorted({PART_SPLITS[p] for p in parts} - set(visuals))
    if lacking:
        raise ValueError(f"visuals has no entry for split(s) {lacking} (keys: {sorted(visuals)})")
    judge = judge or make_judge(cfg.eval.judge)
    run = _Run(cfg=cfg, model=model, tokenizer=tokenizer, world=world, visuals=visuals, judge=judge, out_dir=out,
               name=name or f"{cfg.variant}/seed{cfg.seed}")
    summary = EvalSummary(out_dir=str(out), model=run.name, resolution=size,
                          judge={"judge": judge.name, "judge_model": judge.model, "prompt_hash": judge.prompt_hash})
    n_scenes = world.config.eval_scenes
    steps = {"openvqa": lambda: run_openvqa(run), "mme": lambda: run_mme(run), "owleval": lambda: run_owleval(run),
             "instruct": lambda: run_instruct(run, per_style=style_items or n_scenes, pairs=phrasing_pairs or n_scenes)}
    for part in tqdm([p for p in PARTS if p in parts], desc="eval", disable=not show_progress()):
        started, before = time.perf_counter(), len(run.predictions)
        summary.parts[part] = steps[part]()
        summary.wall_s[part] = time.perf_counter() - started
        summary.counts[part] = len(run.predictions) - before
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(_finite(p), sort_keys=True) + "\n"
                                                          for p in run.predictions))
    summary.files = run.files + ["predictions.jsonl", "summary.json"]
    write_json(out / "summary.json", summary.to_dict())
    return summary


def read_predictions(eval_dir: str | Path) -> list[dict]:
    """The rows :func:`evaluate_model` wrote to ``<eval_dir>/predictions.jsonl``."""
    path = Path(eval_dir) / "predictions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (give evaluation folders holding predictions.jsonl)")
    return [json.loads(line) for line in path.read_text().splitlines() if line]
