"""benchmarks/variant_run.py: trains and scores an overridden recipe at smoke, and names each probe's run
folder by its overrides: two probes of one variant in one out-root get two folders, the same overrides
in any order the same one."""
import importlib.util
from pathlib import Path

from bench_runs import ROOT, run

spec = importlib.util.spec_from_file_location("variant_run", ROOT / "benchmarks" / "variant_run.py")
variant_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(variant_run)


def test_no_overrides_keeps_the_variants_own_folder():
    assert variant_run.run_name("ours", []) == "ours"


def test_overrides_tag_the_folder_independently_of_their_order():
    a = variant_run.run_name("ours", ["model.resampler.locality=2", "instruct.steps=10"])
    b = variant_run.run_name("ours", ["instruct.steps=10", "model.resampler.locality=2"])
    c = variant_run.run_name("ours", ["instruct.trainable=[resampler, adapters, frame_pos, lm]"])
    assert a == b and a.startswith("ours@") and len(a) == len("ours@") + 8
    assert c != a and c.startswith("ours@")
    assert variant_run.run_name("llama", ["model.resampler.locality=2"]) != variant_run.run_name(
        "ours", ["model.resampler.locality=2"])


def test_variant_run_trains_the_overridden_recipe_and_scores_it(tmp_path):
    """benchmarks/variant_run.py at smoke with a mixture override: the stage-2 artifact is the one the
    override keys (not the params file's), stage 1 is shared with it, and Open-VQA-mini is scored
    beside the majority answer."""
    from lynxlib.config import dotted_overrides, load
    from lynxlib.stages import stage_key

    tmp = tmp_path
    out = run("variant_run.py", tmp / "out", tmp / "variant.json", "--set", "instruct.mixture.vqa_ocr=3")["json"]
    default = load("params/smoke.yaml")
    cfg = load("params/smoke.yaml", **dotted_overrides(["instruct.mixture.vqa_ocr=3"]))
    assert cfg.instruct.mixture == {**default.instruct.mixture, "vqa_ocr": 3.0}  # one weight edited, not replaced
    assert out["artifacts"]["instruct"] == f"instruct-{stage_key(cfg, 'instruct')}"
    assert stage_key(cfg, "instruct") != stage_key(default, "instruct")
    assert out["artifacts"]["pretrain_low"] == f"pretrain_low-{stage_key(default, 'pretrain_low')}"
    assert set(out["seconds"]) == {"pretrain_low", "pretrain_high", "instruct", "eval"}
    image = [r for r in out["openvqa"] if r["kind"] == "image"]
    assert {r["category"] for r in image} >= {"OCR", "Counting", "Color", "Spatial", "Place"}
    assert all(0 < r["majority"] <= 100 and 0 <= r["accuracy"] <= 100 for r in out["openvqa"])
    # its own run folder: a second probe of `ours` in this out-root cannot overwrite this evaluation
    eval_dir = Path(out["eval_dir"])
    assert eval_dir.parts[-3].startswith("ours@") and eval_dir.parts[-2:] == ("seed0", "eval")
    assert (eval_dir / "openvqa.csv").is_file()
