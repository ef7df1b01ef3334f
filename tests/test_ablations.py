"""Ablation tables, the findings table and the paper figures, on eval files written by hand."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lynxlib import ablations, figures, paper
from lynxlib.config import load
from lynxlib.evaluate.openvqa_tables import render_markdown
from lynxlib.stages import run_key

PAPER_OURS = {"OCR": (36, 53), "Counting": (25, 37), "Reasoning": (26, 31), "Place": (17, 22),
              "Color": (21, 30), "Spatial": (9, 15), "Action": (17, 20), "Others": (79, 94)}
PAPER_XATTN = {"OCR": (13, 53), "Counting": (6, 37), "Reasoning": (11, 31), "Place": (3, 22),
               "Color": (8, 30), "Spatial": (9, 15), "Action": (5, 20), "Others": (41, 94)}


def write_eval(root, variant, seed, cells, video=((69, 108), (29, 40)), short_words=10.0, type_floor=None):
    folder = root / "tiny" / variant / f"seed{seed}" / "eval"
    folder.mkdir(parents=True)
    rows = [{"kind": "image", "category": c, "correct": k, "total": n} for c, (k, n) in cells.items()]
    rows += [{"kind": "video", "category": c, "correct": k, "total": n}
             for c, (k, n) in zip(paper.VIDEO_CATEGORIES, video)]
    pd.DataFrame(rows).to_csv(folder / "openvqa.csv", index=False)
    pd.DataFrame([{"style": "short", "mean_words": short_words, "compliance": 0.5}]).to_csv(folder / "instruct.csv", index=False)
    base = pd.DataFrame([{"kind": "image", "category": c, "majority": 0.25} for c in cells])
    if type_floor is not None:
        base["type_floor"] = type_floor
    base.to_csv(folder / "baselines.csv", index=False)
    (folder / "summary.json").write_text("{}")


def test_pooled_overall_is_the_papers_rule(tmp_path):
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    tables = ablations.collect("tiny", tmp_path)
    overall = figures.pooled_overall(tables["openvqa"])
    image = overall[overall.kind == "image"].accuracy.iloc[0]
    video = overall[overall.kind == "video"].accuracy.iloc[0]
    assert image == pytest.approx(76.16, abs=0.005)  # 230/302, not the mean of category accuracies
    assert video == pytest.approx(66.22, abs=0.005)


def test_paper_style_table_and_findings(tmp_path):
    write_eval(tmp_path, "ours", 0, PAPER_OURS, short_words=15.81)
    write_eval(tmp_path, "cross_attn", 0, PAPER_XATTN, short_words=15.0)
    write_eval(tmp_path, "llama", 0, PAPER_OURS, short_words=20.15)
    tables = ablations.collect("tiny", tmp_path)
    table = ablations.paper_style_table(tables["openvqa"], "image")
    assert list(table.index) == ["ours", "llama", "cross_attn"]
    assert table.loc["ours", "OCR"] == "36/53"
    assert table.loc["ours", "Overall"] == "76.16 ± 2.45"  # one seed: the binomial s.e. of 230/302, not 0
    findings = ablations.findings_table(tables).set_index("claim")
    by_name = {c.name: c.statement for c in paper.CLAIMS}
    assert findings.loc[by_name["prefix_vs_xattn"], "agrees"] == "yes"
    assert findings.loc[by_name["vicuna_vs_llama"], "agrees"] == "inconclusive"  # identical cells
    assert findings.loc[by_name["vicuna_follows_instructions"], "agrees"] == "yes"  # 15.81 < 20.15 words
    assert findings.loc[by_name["clean_data"], "ours"] == "not run"


def test_seed_spread_replaces_binomial_se(tmp_path):
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    write_eval(tmp_path, "ours", 1, {**PAPER_OURS, "OCR": (46, 53)})
    tables = ablations.collect("tiny", tmp_path)
    mean, spread = ablations.metric(tables, "ours", "ocr")
    seeds_std = pd.Series([230 / 302, 240 / 302]).std() * 100  # two seeds: the std over seeds
    assert ablations.paper_style_table(tables["openvqa"], "image").loc["ours", "Overall"] == f"77.81 ± {seeds_std:.2f}"
    assert mean == pytest.approx(100 * 41 / 53) and spread == pytest.approx(pd.Series([36 / 53, 46 / 53]).std() * 100)


def test_figures_render_beside_the_paper(tmp_path):
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    write_eval(tmp_path, "cross_attn", 0, PAPER_XATTN)
    tables = ablations.collect("tiny", tmp_path)
    fig = figures.open_vqa_overall_figure(tables["openvqa"], "image")
    heights = sorted(round(p.get_height(), 2) for p in fig.axes[0].patches)
    assert 76.16 in heights and 31.79 in heights  # the paper's bars are drawn from the copied CSVs
    heat = figures.category_heatmaps(tables["openvqa"], tables["baselines"], "image")
    assert len(heat.axes) == 2
    rows = [label.get_text() for label in heat.axes[1].get_yticklabels()]
    assert rows == ["ours", "cross_attn", "majority answer"]  # the paper's row order, not alphabetical
    paths = figures.save(fig, tmp_path / "figs", "table3")
    assert all(p.stat().st_size > 0 for p in paths)


def test_with_params_only_current_evaluations_are_collected(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # params/
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    write_eval(tmp_path, "llama", 0, PAPER_OURS)
    write_eval(tmp_path, "gone_variant", 0, PAPER_OURS)
    for variant, key in (("ours", run_key(load("params/tiny.yaml", "ours", seed=0), "eval")), ("llama", "older"),
                         ("gone_variant", "x")):
        (tmp_path / "tiny" / variant / "seed0" / "eval" / "summary.json").write_text(
            json.dumps({"status": "done", "key": key}))
    tables = ablations.collect("tiny", tmp_path, params="params/tiny.yaml")
    assert sorted(tables["openvqa"].variant.unique()) == ["ours"]
    reasons = dict(zip(tables["left_out"].variant, tables["left_out"].reason))
    assert reasons["llama"].startswith("run with other params") and "not a variant" in reasons["gone_variant"]
    assert ablations.summary(tables)["left_out"][0].startswith("gone_variant/seed0")
    assert len(ablations.collect("tiny", tmp_path)["openvqa"].variant.unique()) == 3  # no params: everything


def test_one_seed_answer_length_has_its_standard_error(tmp_path):
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    write_eval(tmp_path, "llama", 0, PAPER_OURS)
    for variant, words in (("ours", 4.0), ("llama", 4.3)):
        pd.DataFrame([{"style": "short", "n": 100, "mean_words": words, "std_words": 2.0, "compliance": 0.5}]).to_csv(
            tmp_path / "tiny" / variant / "seed0" / "eval" / "instruct.csv", index=False)
    tables = ablations.collect("tiny", tmp_path)
    assert ablations.metric(tables, "ours", "short_answer_words") == pytest.approx((4.0, 0.2))
    findings = ablations.findings_table(tables).set_index("claim")
    claim = {c.name: c.statement for c in paper.CLAIMS}["vicuna_follows_instructions"]
    assert findings.loc[claim, "agrees"] == "inconclusive"  # 0.3 words apart, 2 x 0.28 needed


def test_baseline_rows_add_the_type_floor_where_a_run_scored_it(tmp_path):
    """An older run without the type_floor column beside a newer one: the floor row comes from the run
    that has it; without it anywhere, only the majority answer's row."""
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    write_eval(tmp_path, "cross_attn", 0, PAPER_XATTN, type_floor=0.4)
    tables = ablations.collect("tiny", tmp_path)
    table = ablations.with_baselines(tables["openvqa"], tables["baselines"], "image")
    assert table.loc["majority answer", "Spatial"] == "25.0"
    assert table.loc["question-type floor", "Spatial"] == "40.0"
    heat = figures.category_heatmaps(tables["openvqa"], tables["baselines"], "image")
    assert [t.get_text() for t in heat.axes[1].get_yticklabels()][-2:] == ["majority answer", "question-type floor"]
    no_floor = tables["baselines"].drop(columns="type_floor")
    assert list(figures.baseline_rows(no_floor, "image").index) == ["majority answer"]


def test_grid_table_pools_overalls_and_orders_rows_as_the_paper(tmp_path):
    write_eval(tmp_path, "blind", 0, PAPER_XATTN)
    write_eval(tmp_path, "ours", 0, PAPER_OURS, type_floor=0.5)
    tables = ablations.collect("tiny", tmp_path)
    grid = ablations.grid_table(tables)
    assert list(grid.index) == ["ours", "blind", "majority answer", "question-type floor"]
    assert grid.loc["ours", "OCR"] == "67.9 ± 6.4"  # 36/53
    assert grid.loc["ours", "image Overall"] == "76.2 ± 2.5"  # 230/302 pooled, not a mean of categories
    assert grid.loc["blind", "video Overall"] == "66.2 ± 3.9"  # 98/148
    assert grid.loc["majority answer", "image Overall"] == "25.0"
    assert grid.loc["question-type floor", "image Overall"] == "50.0"
    majority_line = next(line for line in render_markdown(grid).splitlines() if line.startswith("| majority answer"))
    assert majority_line.endswith("| 25.0 | - | - | - |")  # no video baseline was scored: no number made up
    assert list(grid.columns[-3:]) == ["video Action (Y/N)", "video Others", "video Overall"]


def test_side_table_means_over_seeds(tmp_path):
    for seed, existence in ((0, 60.0), (1, 80.0)):
        write_eval(tmp_path, "ours", seed, PAPER_OURS, short_words=4.0 + seed)
        folder = tmp_path / "tiny" / "ours" / f"seed{seed}" / "eval"
        pd.DataFrame([{"subtask": "existence", "group": "perception", "score": existence},
                      {"subtask": "count", "group": "perception", "score": 50.0},
                      {"subtask": "code_reasoning", "group": "cognition", "score": 200.0}]).to_csv(folder / "mme.csv", index=False)
        pd.DataFrame([{"item": 0, "correctness": 0.5 + seed / 4, "richness": 0.25}]).to_csv(folder / "owleval.csv", index=False)
    side = ablations.side_table(ablations.collect("tiny", tmp_path)).loc["ours"]
    assert side["MME perception"] == pytest.approx(120.0)  # (110 + 130) / 2: cognition left out
    assert side["existence"] == pytest.approx(70.0) and side["short words"] == pytest.approx(4.5)
    assert side["short compliance %"] == pytest.approx(50.0)
    assert side["OwlEval correctness"] == pytest.approx(0.625) and side["OwlEval richness"] == pytest.approx(0.25)


def test_grid_tables_script_prints_current_runs_and_names_the_stale(tmp_path):
    root = Path(__file__).resolve().parent.parent
    write_eval(tmp_path, "ours", 0, PAPER_OURS)
    write_eval(tmp_path, "llama", 0, PAPER_OURS)
    for variant, key in (("ours", run_key(load(root / "params/tiny.yaml", "ours", seed=0), "eval")), ("llama", "older")):
        (tmp_path / "tiny" / variant / "seed0" / "eval" / "summary.json").write_text(json.dumps({"status": "done", "key": key}))
    script = [sys.executable, str(root / "benchmarks" / "grid_tables.py"), "--scale", "tiny", "--out-root", str(tmp_path)]
    done = subprocess.run(script + ["--out", str(tmp_path / "grid.json")], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| ours | 67.9 ± 6.4 |" in done.stdout and "left out: llama/seed0: run with other params" in done.stdout
    assert json.loads((tmp_path / "grid.json").read_text())["grid"][0]["image Overall"] == "76.2 ± 2.5"
    empty = subprocess.run(script[:-1] + [str(tmp_path / "none")], cwd=root, capture_output=True, text=True)
    assert empty.returncode != 0 and "no evaluation of params/tiny.yaml" in empty.stderr
