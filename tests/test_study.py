"""The study runner: planning, reuse of finished runs, failure isolation (notebooks faked here;
the real notebooks run end to end under nbval)."""
import json

import pytest

from lynxlib import study
from lynxlib.runs import write_json


def fake_execute(fail_variant=None, calls=None):
    def execute(job, *, params, out_root, threads):
        calls.append(job.name)
        if job.variant == fail_variant and job.stage == "instruct":
            raise RuntimeError(f"{job.name} failed: see {job.out_dir / job.notebook}")
        write_json(job.out_dir / "summary.json", {"status": "done", "key": job.key})
        return job.out_dir / job.notebook
    return execute


def test_plan_orders_stages_and_dedupes_world(tmp_path):
    jobs = study.plan("params/smoke.yaml", ["ours", "llama"], [0, 1], str(tmp_path))
    names = [j.name for j in jobs]
    assert names[:2] == ["world:ours:seed0", "backbones:ours:seed0"]
    assert sum(j.stage == "pretrain" for j in jobs) == 4
    assert jobs[-2].stage == "ablations" and len(jobs[-2].after) == 4
    assert all(names.index(dep) < names.index(j.name) for j in jobs for dep in j.after)


def test_rerun_reuses_finished_runs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(study, "execute", fake_execute(calls=calls))
    jobs = study.plan("params/smoke.yaml", ["ours", "low_res"], [0], str(tmp_path))
    first = study.run(jobs, params="params/smoke.yaml", out_root=str(tmp_path))
    assert not first["failed"] and len(calls) == len(jobs)
    calls.clear()
    for job in jobs[5:8]:  # as if killed during low_res's pretraining: its later stages never ran
        (job.out_dir / "summary.json").unlink()
    second = study.run(jobs, params="params/smoke.yaml", out_root=str(tmp_path))
    # the interrupted run and everything downstream rerun; finished runs are reused
    assert calls == [j.name for j in jobs[5:]]
    assert second["status"]["pretrain:ours:seed0"] == "reused"


def test_changed_config_is_not_reused(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(study, "execute", fake_execute(calls=calls))
    jobs = study.plan("params/smoke.yaml", ["ours"], [0], str(tmp_path))
    study.run(jobs, params="params/smoke.yaml", out_root=str(tmp_path))
    summary = jobs[2].out_dir / "summary.json"
    summary.write_text(json.dumps({"status": "done", "key": "stale"}))
    assert not study.is_done(jobs[2]) and study.is_done(jobs[3])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_variant_does_not_stop_the_others(tmp_path, monkeypatch, workers):
    calls = []
    monkeypatch.setattr(study, "execute", fake_execute(fail_variant="llama", calls=calls))
    jobs = study.plan("params/smoke.yaml", ["llama", "ours"], [0], str(tmp_path))
    result = study.run(jobs, params="params/smoke.yaml", out_root=str(tmp_path), workers=workers)
    assert list(result["failed"]) == ["instruct:llama:seed0"]
    assert "03_instruct.ipynb" in result["failed"]["instruct:llama:seed0"]
    assert result["status"]["eval:llama:seed0"] == "skipped"
    assert result["status"]["eval:ours:seed0"] == "done"
    assert result["status"]["ablations:llama:seed0"] == "skipped"


def test_dry_run_prints_the_plan(tmp_path, capsys):
    assert study.main(["--scale", "smoke", "--variants", "ours", "blind", "--dry-run", "--out-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pretrain:blind:seed0" in out and "06_figures.ipynb" in out
