"""benchmarks/variant_run.py names each probe's run folder by its overrides: two probes of one variant
in one out-root get two folders, the same overrides in any order the same one."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
