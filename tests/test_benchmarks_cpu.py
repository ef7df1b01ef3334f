"""The benchmarks run end to end at smoke scale (CPU, 2-3 steps where they train),
into a temporary out root: finite positive timings, and cached and uncached steps give the same loss."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench_runs import ENV, ROOT, run



def positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def bench_files() -> set[Path]:
    """What benchmarks would have written into the repository's own outputs/."""
    folder = ROOT / "outputs" / "smoke" / "bench"
    return set(folder.rglob("*")) if folder.exists() else set()


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    before = bench_files()
    out = {"feature_cache": run("feature_cache.py", tmp / "out", tmp / "fc.json", "--steps", "3", "--warmup", "1"),
           "stages": run("stages.py", tmp / "out", tmp / "stages.json", "--steps", "2", "--warmup", "1")}
    out["repo_outputs_untouched"] = bench_files() == before
    out["tmp"] = tmp
    return out


def test_feature_cache_loss_check_and_timings(results):
    res, stdout = results["feature_cache"]["json"], results["feature_cache"]["stdout"]
    check = res["loss_check"]
    assert check["passed"] and check["loss_rel_diff"] <= check["loss_rtol"], check
    assert check["visual_input"] == ["pixel_values", "vision_tokens"]
    assert math.isclose(check["loss_uncached"], check["loss_cached"], rel_tol=1e-4)
    s = res["summary"]
    for mode in ("uncached", "cached"):
        assert s[mode]["steps"] == 3
        assert all(positive(s[mode][k]) for k in ("s_per_step", "data_s_per_step", "compute_s_per_step",
                                                  "samples_per_s")), s[mode]
    assert all(positive(s[k]) for k in ("ratio", "tower_s_per_step", "tower_share", "predicted_ratio"))
    assert 0 < s["tower_share"] < 1 and s["predicted_ratio"] > 1
    assert math.isfinite(s["overhead_s_per_step"]) and math.isfinite(s["trajectory_max_loss_diff"])
    assert res["scale"] == "smoke" and res["backbones"] == "stage0" and res["batch_size"] == 4
    assert "PASSED" in stdout and "predicted by the share" in stdout


def test_stages_samples_per_s_and_projection(results):
    res = results["stages"]["json"]
    assert [r["stage"] for r in res["stages"]] == ["pretrain_low", "pretrain_high", "instruct"]
    for row in res["stages"]:
        assert row["steps_timed"] == 2 and row["batch_size"] == 4
        assert all(positive(row[k]) for k in ("samples_per_s", "s_per_step", "compute_s_per_step", "full_steps"))
        assert 0 < row["text_token_use"] <= 1  # real text tokens over the B x T the LM processes
    proj = res["projection"]
    assert all(positive(proj[k]) for k in ("stage1_s", "stage2_s", "stage1_plus_stage2_s", "cache_build_s"))
    expected = sum(r["s_per_step"] * r["full_steps"] for r in res["stages"])
    assert math.isclose(proj["stage1_plus_stage2_s"], expected, rel_tol=1e-9)
    assert set(res["cache_build"]) == {"train_images@64px", "train_videos@64px", "train_images@128px",
                                       "train_videos@128px"}
    assert all(positive(rec["seconds"]) for rec in res["cache_build"].values())
    assert "projected: stage 1" in results["stages"]["stdout"]


def test_benchmarks_write_only_under_out_root(results):
    assert results["repo_outputs_untouched"]
    bench = results["tmp"] / "out" / "smoke" / "bench"
    assert (bench / "features").is_dir()


@pytest.fixture(scope="module")
def smoke_world(tmp_path_factory) -> Path:
    """A smoke world on disk, shared by the benchmarks that train on its scenes."""
    from lynxlib.config import load
    from lynxlib.world import write_world

    world = tmp_path_factory.mktemp("bench_world") / "world"
    write_world(load("params/smoke.yaml").world, world, progress=False)
    return world


def run_on_world(script: str, world: Path, out: Path, *extra: str) -> tuple[dict, str]:
    """Run benchmarks/<script> at smoke on ``world``; (its JSON, its stdout)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), "--params", "params/smoke.yaml",
           "--world", str(world), "--out", str(out), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_tower_shapes_runs_every_setup(tmp_path, smoke_world):
    """benchmarks/tower_shapes.py at smoke: each setup trains, is scored on held-out scenes, and the
    conv-stem setups really carry the conv stem."""
    res, stdout = run_on_world("tower_shapes.py", smoke_world, tmp_path / "shapes.json", "--steps", "4",
                               "--log-every", "2")
    assert set(res["results"]) == {"cnn_crops", "vit_crops", "vit_whole_patch", "vit_whole_conv", "vit_whole_conv_multi"}
    assert 0 < res["majority"] <= 1
    for setup, r in res["results"].items():
        assert [c["step"] for c in r["curve"]] == [2, 4] and r["n_heldout"] > 0, setup
        assert 0 <= r["heldout_acc"] <= 1 and r["parameters"] > 0, setup
    stems = {k: r["stem"] for k, r in res["results"].items()}
    assert stems == {"cnn_crops": "none", "vit_crops": "Conv2d", "vit_whole_patch": "Conv2d",
                     "vit_whole_conv": "ConvStem", "vit_whole_conv_multi": "ConvStem"}
    assert "held-out majority shape" in stdout


def test_word_legibility_reads_high_resolution_words(tmp_path, smoke_world):
    """benchmarks/word_legibility.py at smoke: per resolution, the letter reader, the closed-set
    matcher and the CNN; the strokes survive at the high resolution only."""
    from lynxlib.config import load

    cfg = load("params/smoke.yaml")
    res, _ = run_on_world("word_legibility.py", smoke_world, tmp_path / "words.json", "--steps", "3")
    low, high = str(cfg.world.image_size_low), str(cfg.world.image_size_high)
    assert set(res["results"]) == {low, high} and res["n_heldout"] > 0 and res["n_train"] > res["n_heldout"]
    for r in res["results"].values():
        assert all(0 <= r[k] <= 1 for k in ("letter_reader", "closed_set_match", "cnn"))
    assert res["results"][high]["letter_reader"] == 1.0
    assert res["results"][low]["letter_reader"] < 0.5


def test_bridge_probe_reads_latents_beside_tower_tokens(results):
    """benchmarks/bridge_probe.py at smoke on the fixture's stage 0, resampler as initialised with a locality
    prior: every attribute probed from every readout, and one attention row per resampler layer."""
    from lynxlib.config import load

    out = results["tmp"] / "bridge.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bridge_probe.py"), "--params", "params/smoke.yaml",
           "--threads", "1", "--out-root", str(results["tmp"] / "out"), "--scenes", "40",
           "--set", "model.resampler.locality=2", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["locality"] == 2 and res["scenes"] == 40
    assert {(r["attribute"], r["readout"]) for r in res["probes"]} == {
        (a, r) for a in ("occupied", "shape", "colour") for r in ("cell_mean", "latents", "pooled")}
    assert all(0 <= r["acc"] <= 1 and 0 < r["majority"] <= 1 and r["cells"] > 0 for r in res["probes"])
    depth = load("params/smoke.yaml").model.resampler.depth
    assert [r["layer"] for r in res["attention"]] == list(range(depth))
    assert all(0 < r["entropy"] <= r["uniform"] + 1e-6 for r in res["attention"])


def test_colour_binding_splits_an_evaluation_by_colours_in_the_image(tmp_path):
    """benchmarks/colour_binding.py on a predictions file that is right exactly on the smoke set's
    one-colour images: accuracy 1 there, 0 elsewhere."""
    from lynxlib.config import load
    from lynxlib.evaluate.bridge import colours_present
    from lynxlib.world.evalsets import open_vqa_mini

    records, _, scenes, _ = open_vqa_mini(load("params/smoke.yaml").world)
    rows = [{"part": "openvqa", "kind": "image", "category": r["class"], "uid": f"openvqa/image/{k}",
             "correct": colours_present(scenes[k]) == 1} for k, r in enumerate(records)]
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "binding.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "colour_binding.py"), "--params", "params/smoke.yaml",
           str(tmp_path / "eval"), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = json.loads(out.read_text())["results"][str(tmp_path / "eval")]
    n_colour = sum(r["class"] == "Color" for r in records)
    assert sum(r["n"] for r in table) == n_colour > 0
    assert all(r["accuracy"] == (1.0 if r["colours"] == 1 else 0.0) for r in table)


def test_openvqa_by_qtype_splits_categories_by_question_type(tmp_path):
    """benchmarks/openvqa_by_qtype.py on two predictions files: one right exactly on the yes/no
    relations, one right everywhere; each type's accuracy comes out 100 or 0 accordingly."""
    from lynxlib.config import load
    from lynxlib.world.evalsets import open_vqa_plan

    plan = open_vqa_plan(load("params/smoke.yaml").world)
    for name, right in (("yn", lambda qtype: qtype == "relation_yn"), ("all", lambda qtype: True)):
        rows = [{"part": "openvqa", "kind": "image", "category": c, "uid": f"openvqa/image/{k}", "correct": right(q)}
                for k, (c, q, _) in enumerate(plan)]
        (tmp_path / name).mkdir()
        (tmp_path / name / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "qtype.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "openvqa_by_qtype.py"), "--params", "params/smoke.yaml",
           f"yn={tmp_path / 'yn'}", f"all={tmp_path / 'all'}", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = {(r["category"], r["qtype"]): r for r in json.loads(out.read_text())["table"]}
    assert sum(r["n"] for r in table.values()) == len(plan)
    assert table[("Spatial", "relation_yn")]["yn"] == 100.0 and table[("Spatial", "relation")]["yn"] == 0.0
    assert all(r["all"] == 100.0 and r["all se"] == 0.0 for r in table.values())
    assert table[("Spatial", "relation_yn")]["majority"] >= 50.0
    pooled = {r["category"]: r for r in json.loads(out.read_text())["categories"]}
    n_spatial = sum(c == "Spatial" for c, _, _ in plan)
    assert pooled["Spatial"]["n"] == n_spatial and pooled["Spatial"]["all"] == 100.0
    assert pooled["Spatial"]["yn"] == pytest.approx(100 * table[("Spatial", "relation_yn")]["n"] / n_spatial)
    # a predictions file from another world does not line up with the plan: a clear error, not a table
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "predictions.jsonl").write_text(json.dumps({**rows[0], "category": "Spatial", "uid": "openvqa/image/0"}) + "\n")
    cmd[-4:-2] = [f"bad={bad}"]
    proc = subprocess.run(cmd[:-2], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "does not match the plan" in proc.stderr


def test_tower_words_trains_each_stem(tmp_path, smoke_world):
    """benchmarks/tower_words.py at smoke: both stems train on the word of whole images and are scored
    on held-out word-carrying scenes against chance."""
    from lynxlib.config import load

    res, stdout = run_on_world("tower_words.py", smoke_world, tmp_path / "words.json", "--steps", "4",
                               "--log-every", "2")
    assert res["size"] == load("params/smoke.yaml").world.image_size_high
    assert set(res["results"]) == {"vit_whole_patch", "vit_whole_conv"}
    for setup, r in res["results"].items():
        assert [c["step"] for c in r["curve"]] == [2, 4] and r["n_heldout"] > 0, setup
        assert 0 <= r["heldout_acc"] <= 1 and 0 < r["chance"] < 0.5, setup
    assert "held-out" in stdout


def test_lm_reading_scores_each_corpus_recipe_on_the_same_passages(tmp_path):
    out = tmp_path / "lm_reading.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "lm_reading.py"), "--params", "params/smoke.yaml",
           "--recipe", "base=", "--recipe", "dense=world.reading_questions=3,world.recall_share=0.2,world.recall_positions=0.5",
           "--passages", "24", "--workers", "2", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())["results"]
    assert list(res) == ["base", "dense"] and res["dense"]["set"] == ["world.reading_questions=3",
                                                                      "world.recall_share=0.2",
                                                                      "world.recall_positions=0.5"]
    assert res["base"]["corpus_lines"] == res["dense"]["corpus_lines"] == 400  # smoke's text_corpus
    assert res["dense"]["corpus_tokens"] > res["base"]["corpus_tokens"]  # more questions per description
    for r in res.values():
        assert r["reading"]["n"] == 24 and 0 <= r["reading"]["exact"] <= 1 and positive(r["train_s"])
        assert sum(q["n"] for q in r["reading"]["by_qtype"].values()) == 24
        assert set(r["lookup"]["by_qtype"]) == {"lookup_colour", "lookup_shape"} and r["lookup"]["n"] == 24
        assert set(r["lookup_where"]["by_qtype"]) == {"lookup_position", "lookup_at"} and r["lookup_where"]["n"] == 24
    # the same held-out passages for every recipe
    assert {q: v["n"] for q, v in res["base"]["reading"]["by_qtype"].items()} == \
        {q: v["n"] for q, v in res["dense"]["reading"]["by_qtype"].items()}
    assert "colour *" in proc.stdout and "lookup_colour *" in proc.stdout and "lookup_position *" in proc.stdout and "base" in proc.stdout.splitlines()[0]
    bad = subprocess.run(cmd[:4] + ["--recipe", "x=world.reading_question=3"], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "reading_question" in bad.stderr


def test_visual_use_trains_and_scores_on_oracle_tokens(results):
    """benchmarks/visual_use.py --visuals oracle --oracle-cells at smoke: the oracle cache has the
    tower's layout (CLS + patches, the tower's width), a gap row per task, and Open-VQA-mini scored
    on every image and video category from those tokens."""
    from lynxlib.config import load
    from lynxlib.world.evalsets import CATEGORY_TASKS

    tmp, cfg = results["tmp"], load("params/smoke.yaml")
    out = run("visual_use.py", tmp / "out", tmp / "oracle.json", "--visuals", "oracle", "--oracle-cells",
              "--train-mixture", "vqa_color:1,vqa_ocr:1", "--train-steps", "2", "--batches", "1",
              "--tasks", "vqa_color,vqa_ocr", "--probe-dir", str(tmp / "oracle_probe"),
              "--eval-dir", str(tmp / "oracle_eval"))["json"]
    assert [r["task"] for r in out["rows"]] == ["vqa_color", "vqa_ocr"]
    assert all(math.isfinite(r["gap"]) and r["true"] > 0 for r in out["rows"])
    assert {(r["kind"], r["category"].replace(" ", "")) for r in out["openvqa"]} == {  # "Action (Y/N)" shown
        (kind, cat) for kind, cats in CATEGORY_TASKS.items() for cat in cats}
    assert all(r["total"] > 0 for r in out["openvqa"])
    [meta] = (tmp / "out" / "smoke" / "features").glob("oracle-*-cells/train_images.json")
    side = cfg.world.image_size_high // cfg.vision.patch_size
    assert json.loads(meta.read_text())["shape"] == [cfg.world.train_scenes, 1, 1 + side * side, cfg.vision.width]
