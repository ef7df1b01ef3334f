"""The evaluation harness at smoke scale: a random-init model over the smoke world's evaluation sets.

Checks the eval folder (files, columns, pooled Overall), the scoring path with fake models (an oracle
that answers every reference: 100% Open-VQA, MME 200 per subtask; "always yes": MME 50), and that
batched generation answers exactly what the per-sample loop answers.
"""
import copy
import json

import pandas as pd
import pytest
import torch

from lynxlib import inference
from lynxlib.build import build_lm, build_model
from lynxlib.config import load
from lynxlib.data import PromptFormatter
from lynxlib.evaluate import sets
from lynxlib.evaluate.harness import PARTS, evaluate_model
from lynxlib.evaluate.owleval import score_text
from lynxlib.features import FeatureCache
from lynxlib.inference import PromptItem, generate_answers, generate_one_by_one, plan_batches
from lynxlib.tokenizer import train_tokenizer
from lynxlib.vision import create_clip
from lynxlib.world import WorldStore, write_world

from model_kit import wake_up

STYLE_ITEMS, PHRASING_PAIRS = 4, 4
COLUMNS = {
    "openvqa.csv": ["kind", "category", "correct", "total", "undecided", "missing", "accuracy", "se"],
    "baselines.csv": ["kind", "category", "majority", "type_floor"],
    "mme.csv": ["subtask", "group", "n_questions", "n_images", "acc", "acc_plus", "score"],
    "instruct.csv": ["style", "n", "mean_words", "std_words", "compliance", "accuracy"],
    "phrasings.csv": ["model", "n_train", "n_held_out", "train_accuracy", "held_out_accuracy", "gap"],
    "owleval.csv": ["item", "prompt", "correctness", "richness", "words", "distinct2"],
}


@pytest.fixture(scope="module")
def cfg():
    return load("params/smoke.yaml", "ours")


@pytest.fixture(scope="module")
def world(cfg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    write_world(cfg.world, folder, progress=False)
    return WorldStore(folder)


@pytest.fixture(scope="module")
def tok(world, cfg):
    return train_tokenizer(world.corpus(), vocab_size=cfg.tokenizer.vocab_size)


def smoke_model(variant, tok):
    """A random-init model with awake adapters and gates (so the vision input matters)."""
    cfg = load("params/smoke.yaml", variant)
    torch.manual_seed(0)
    lm = build_lm(cfg.lm, vocab_size=len(tok), pad_id=tok.pad_token_id, bos_id=tok.bos_token_id,
                  eos_id=tok.eos_token_id)
    visual = create_clip(cfg, vocab_size=len(tok)).visual
    return cfg, wake_up(build_model(cfg, tokenizer=tok, lm=lm, clip_visual_or_tower=visual).eval())


@pytest.fixture(scope="module")
def model(tok):
    return smoke_model("ours", tok)[1]


@pytest.fixture(scope="module")
def evaluated(cfg, model, tok, world, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    summary = evaluate_model(cfg, model=model, tokenizer=tok, world=world, out_dir=out, style_items=STYLE_ITEMS,
                             phrasing_pairs=PHRASING_PAIRS)
    return out, summary


def evaluate(cfg, model, tok, world, out, **kw):
    return evaluate_model(cfg, model=model, tokenizer=tok, world=world, out_dir=out, style_items=STYLE_ITEMS,
                          phrasing_pairs=PHRASING_PAIRS, **kw)


# ------------------------------------------------------------------------------------------ the eval folder
def test_writes_every_table_with_its_columns(evaluated, world):
    out, summary = evaluated
    for name, columns in COLUMNS.items():
        frame = pd.read_csv(out / name)
        assert list(frame.columns[: len(columns)]) == columns, name
        assert len(frame), name
    assert sorted(p.stem for p in (out / "mme").glob("*.txt")) == sorted(world.mme_subtasks())
    for path in (out / "mme").glob("*.txt"):
        lines = path.read_text().splitlines()
        assert len(lines) == len(world.mme(path.stem)) and all(len(line.split("\t")) == 4 for line in lines)
    assert not list(out.rglob(".*.tmp")), "atomic writes leave no temporary files"
    assert set(summary.files) >= set(COLUMNS) | {"predictions.jsonl", "summary.json"}


def test_openvqa_cells_and_pooled_overall(evaluated, world):
    out, _ = evaluated
    frame = pd.read_csv(out / "openvqa.csv")
    summary = json.loads((out / "summary.json").read_text())
    for kind in ("image", "video"):
        part = frame[frame.kind == kind]
        records = world.open_vqa(kind)
        assert part.total.sum() == len(records)
        assert set(part.category) == {r["class"].replace("Action(Y/N)", "Action (Y/N)") for r in records}
        pooled = 100 * part.correct.sum() / part.total.sum()
        assert summary["parts"]["openvqa"][kind]["overall"] == pytest.approx(pooled)
    base = pd.read_csv(out / "baselines.csv")
    assert set(base.kind) == {"image", "video"} and base.majority.between(0, 1).all()
    assert (base.type_floor >= base.majority - 1e-9).all()  # each type's best constant scores at least the majority answer there


def test_summary_and_predictions(evaluated, world):
    out, summary = evaluated
    data = json.loads((out / "summary.json").read_text())
    assert data["judge"] == {"judge": "rule", "judge_model": "rule-v2", "prompt_hash": data["judge"]["prompt_hash"]}
    assert len(data["judge"]["prompt_hash"]) == 16
    assert set(data["wall_s"]) == set(PARTS) and all(t > 0 for t in data["wall_s"].values())
    n_mme = sum(len(world.mme(s)) for s in world.mme_subtasks())
    assert data["counts"] == {"openvqa": len(world.open_vqa("image")) + len(world.open_vqa("video")), "mme": n_mme,
                              "instruct": 3 * STYLE_ITEMS + 2 * PHRASING_PAIRS, "owleval": len(world.owleval())}
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == sum(data["counts"].values()) and len({r["uid"] for r in rows}) == len(rows)
    assert all(isinstance(r["prediction"], str) for r in rows)
    phrasing = data["parts"]["instruct"]["phrasing"]
    assert phrasing["n_train"] == phrasing["n_held_out"] == PHRASING_PAIRS
    assert summary.to_dict()["counts"] == data["counts"]


# ------------------------------------------------------------------------------------------ fake models
def oracle_answers(world) -> dict[str, str]:
    """uid -> a reference answer, for every item the harness asks."""
    truth = {f"openvqa/{kind}/{r['index']}": r["answer"][0]
             for kind in ("image", "video") for r in world.open_vqa(kind)}
    rows = sets.mme_rows(world)
    truth |= {it.uid: r["answer"] for it, r in zip(sets.mme_items(rows), [r for sub in rows.values() for r in sub])}
    styled = sets.style_samples(world, per_style=STYLE_ITEMS)
    phrased = sets.phrasing_samples(world, pairs=PHRASING_PAIRS)
    for samples, prefix, key in ((styled, "style", "style"), (phrased, "phrasing", "phrasing")):
        truth |= {it.uid: s.references[0] for it, s in zip(sets.sample_items(samples, prefix=prefix, key=key), samples)}
    return truth


def fake_generate(answer):
    def generate(model, *, items, **kwargs):
        return [answer(item) for item in items]
    return generate


def test_oracle_scores_full_marks(cfg, model, tok, world, tmp_path, monkeypatch):
    truth = oracle_answers(world)
    monkeypatch.setattr(inference, "generate_answers", fake_generate(lambda item: truth.get(item.uid, "")))
    summary = evaluate(cfg, model, tok, world, tmp_path)
    for kind in ("image", "video"):
        assert summary.parts["openvqa"][kind]["overall"] == 100.0
    frame = pd.read_csv(tmp_path / "openvqa.csv")
    assert (frame.correct == frame.total).all()
    mme = pd.read_csv(tmp_path / "mme.csv")
    assert (mme.score == 200).all() and len(mme) == len(world.mme_subtasks())
    assert summary.parts["instruct"]["phrasing"]["train_accuracy"] == 1.0
    assert summary.parts["instruct"]["phrasing"]["held_out_accuracy"] == 1.0


def test_always_yes_scores_mme_50(cfg, model, tok, world, tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "generate_answers", fake_generate(lambda item: "Yes"))
    summary = evaluate(cfg, model, tok, world, tmp_path, parts=("mme",))
    mme = pd.read_csv(tmp_path / "mme.csv")
    assert (mme.acc == 0.5).all() and (mme.acc_plus == 0).all() and (mme.score == 50).all()
    assert summary.parts["mme"]["perception"] == 50 * len(mme)
    assert not (tmp_path / "openvqa.csv").exists() and list(summary.parts) == ["mme"]


def test_unknown_part_or_missing_visuals_is_an_error(cfg, model, tok, world, tmp_path):
    with pytest.raises(ValueError, match="unknown eval parts"):
        evaluate(cfg, model, tok, world, tmp_path, parts=("openvqa", "vqav2"))
    with pytest.raises(ValueError, match="no entry for split"):
        evaluate(cfg, model, tok, world, tmp_path, parts=("mme",), visuals={"open_vqa_mini": None})


def test_held_out_styles_and_paired_phrasings(world):
    styled = sets.style_samples(world, per_style=3)
    assert [s.style for s in styled] == ["short"] * 3 + ["one_word"] * 3 + ["explain"] * 3
    assert all(s.visual_kind == "image" and s.category for s in styled)
    phrased = sets.phrasing_samples(world, pairs=5)
    for trained, held in zip(phrased[::2], phrased[1::2]):
        assert (trained.phrasing, held.phrasing) == ("train", "held_out")
        assert (trained.visual_index, trained.references) == (held.visual_index, held.references)
        assert trained.question != held.question
    assert sets.style_samples(world, per_style=3) == styled, "deterministic"


# ------------------------------------------------------------------------------------------ batching
def test_plan_batches_groups_kinds_and_sorts_by_length():
    lengths = [5, 3, 9, 3, 1, 7, 2]
    kinds = ["video", "image", "image", "none", "image", "video", "image"]
    plan = plan_batches(lengths, kinds, batch_size=2)
    assert plan == [("image", [4, 6]), ("image", [1, 2]), ("video", [0, 5]), ("none", [3])]
    with pytest.raises(ValueError):
        plan_batches(lengths, kinds, batch_size=0)


def test_batched_answers_equal_one_by_one(cfg, model, tok, world):
    with torch.no_grad():  # a loud pad embedding: any attention to padding would change the answers
        model = copy.deepcopy(model)
        model.lm.get_input_embeddings().weight[tok.pad_token_id].normal_(0, 3)
    size = sets.resolution_size(world, cfg.eval.resolution)
    model.set_resolution(size)
    visuals = sets.eval_visuals(world, size=size)["open_vqa_mini"]
    items = (sets.open_vqa_items(world.open_vqa("image")[:7], kind="image")
             + sets.open_vqa_items(world.open_vqa("video")[:4], kind="video")
             + [PromptItem.ask("What is two plus three?"), PromptItem((("Name a colour.", "red"), ("Another?", "")))])
    items = items[::-1]  # kinds interleave with the input order
    fmt = PromptFormatter(tokenizer=tok, template=cfg.generation.template, num_image_tokens=model.num_image_tokens,
                          max_len=128)
    common = dict(tokenizer=tok, formatter=fmt, items=items, visuals=visuals, stop="User:", max_new_tokens=8)
    batched = generate_answers(model, batch_size=3, **common)
    single = generate_one_by_one(model, **common)
    assert batched == single
    assert len(set(batched)) > 1, "answers differ between items (the test would be vacuous otherwise)"
    assert generate_answers(model, batch_size=16, **common) == batched


@pytest.mark.parametrize("variant", ["cross_attn", "blind"])
def test_other_fusions_evaluate(variant, tok, world, tmp_path):
    cfg, model = smoke_model(variant, tok)
    summary = evaluate(cfg, model, tok, world, tmp_path, parts=("openvqa", "owleval"))
    assert summary.counts["openvqa"] == len(world.open_vqa("image")) + len(world.open_vqa("video"))
    assert (tmp_path / "owleval.csv").is_file()


def test_feature_cache_gives_the_same_answers(cfg, model, tok, world, evaluated, tmp_path):
    cache = FeatureCache(tmp_path / "features", "smoke-test")
    evaluate(cfg, model, tok, world, tmp_path / "eval", cache=cache, parts=("openvqa",))
    assert (tmp_path / "features" / "smoke-test" / "open_vqa_mini_videos.npy").is_file()
    read = lambda folder: {r["uid"]: r["prediction"] for r in map(json.loads, (folder / "predictions.jsonl").open())}
    cached, plain = read(tmp_path / "eval"), read(evaluated[0])
    assert cached == {uid: plain[uid] for uid in cached}


# ------------------------------------------------------------------------------------------ OwlEval facts
def test_owl_facts_from_a_scene_graph(world):
    scenes = [r["scene"] for r in world.owleval()] + [s.to_dict() for s in world.scenes("eval")]
    scene = next(s for s in scenes if s.get("group") and s.get("text"))
    facts = sets.owl_facts(scene)
    group, objects = scene["group"], scene["objects"]
    assert facts["count"] == {"shape": group["shape"], "n": len(group["slots"])}
    assert facts["text"] == scene["text"]["word"] and len(facts["objects"]) == len(objects) + 1
    from lynxlib.world.vocab import number_word, plural

    n = len(group["slots"])
    text = (f"A {objects[0]['colour']} {objects[0]['shape']} at the {scene['place']}, "
            f"{number_word(n)} {plural(group['shape'], n)}, and a sign that says \"{scene['text']['word']}\".")
    score = score_text(text, facts)
    assert score.correctness == 1.0 and not score.hallucinated and score.richness > 0.5


# ------------------------------------------------------------------------------------------ the benchmark
def test_generation_benchmark_runs_at_smoke(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "generation.py"
    spec = importlib.util.spec_from_file_location("bench_generation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--params", "params/smoke.yaml", "--threads", "1", "--backbones", "random", "--items", "12",
                         "--out-root", str(tmp_path / "out"), "--out", str(tmp_path / "gen.json")])
    assert result["identical"] and result["items"] == 12 and result["kinds"] == {"image": 8, "video": 4}
    assert result["batched_s"] > 0 and result["one_by_one_s"] > 0 and result["tower_s"] > 0
    assert json.loads((tmp_path / "gen.json").read_text())["ratio"] == pytest.approx(result["ratio"])
