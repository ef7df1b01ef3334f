"""The study from one command: plan the notebooks per variant and seed, run them with papermill.

``python -m lynxlib.study --scale tiny`` (or the ``lynx-study`` console script) executes
00_world -> 01_backbones -> 02_pretrain -> 03_instruct -> 04_evaluate for every chosen variant and
seed into ``outputs/<scale>/<variant>/seed<k>/<stage>/``, then 05_ablations and 06_figures.
A notebook whose run directory already holds a finished ``summary.json`` for the same stage key is
skipped, so a rerun after an interruption picks up where it stopped; stages whose key two variants
share are computed once (the notebooks reuse ``outputs/<scale>/shared/``). One failing variant does
not stop the others: the summary lists it with the path of its failed executed notebook.
``outputs/<scale>/manifest.json`` records the git commit, package versions, and for every run its
resolved config, key and data fingerprint (``lynxlib.datahash``: the stored world's file hashes).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lynxlib.config import load
from lynxlib.datahash import path_fingerprints, world_hashes
from lynxlib.runs import env_info, package_versions, resolve, write_json
from lynxlib.stages import artifact_dir, run_dir, run_key, run_state

NOTEBOOKS = {
    "world": "00_world.ipynb",
    "backbones": "01_backbones.ipynb",
    "pretrain": "02_pretrain.ipynb",
    "instruct": "03_instruct.ipynb",
    "eval": "04_evaluate.ipynb",
    "ablations": "05_ablations.ipynb",
    "figures": "06_figures.ipynb",
}
PER_VARIANT = ("pretrain", "instruct", "eval")


@dataclass
class Job:
    """One notebook execution."""

    stage: str
    variant: str
    seed: int
    key: str | None
    out_dir: Path
    after: list[str] = field(default_factory=list)  # names of jobs that must finish first

    @property
    def name(self) -> str:
        return f"{self.stage}:{self.variant}:seed{self.seed}"

    @property
    def notebook(self) -> str:
        return NOTEBOOKS[self.stage]


def plan(params: str, variants: list[str], seeds: list[int], out_root: str = "outputs") -> list[Job]:
    """Every notebook to execute, in dependency order."""
    base = load(params, variants[0], seed=seeds[0])
    jobs = [Job(s, base.variant, base.seed, run_key(base, s), run_dir(base, s, out_root)) for s in ("world", "backbones")]
    jobs[1].after = [jobs[0].name]
    finals = []
    for variant in variants:
        for seed in seeds:
            cfg = load(params, variant, seed=seed)
            previous = jobs[1].name
            for stage in PER_VARIANT:
                job = Job(stage, variant, seed, run_key(cfg, stage), run_dir(cfg, stage, out_root), [previous])
                jobs.append(job)
                previous = job.name
            finals.append(previous)
    jobs.append(Job("ablations", base.variant, base.seed, None, run_dir(base, "ablations", out_root), finals))
    jobs.append(Job("figures", base.variant, base.seed, None, run_dir(base, "figures", out_root), [jobs[-1].name]))
    return jobs


def is_done(job: Job) -> bool:
    return run_state(job.out_dir, job.key) == "done"


def execute(job: Job, *, params: str, out_root: str, threads: int) -> Path:
    """Run one notebook through papermill in a subprocess; return the executed notebook's path."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    output = job.out_dir / job.notebook
    source = resolve("notebooks") / job.notebook
    cmd = [sys.executable, "-m", "papermill", str(source), str(output), "--cwd", str(source.parent),
           "-p", "params", str(resolve(params)), "-p", "variant", job.variant, "-p", "seed", str(job.seed),
           "-p", "out_root", str(resolve(out_root)), "--no-progress-bar"]
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = job.out_dir / "papermill.log"
    with log.open("w") as handle:
        code = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        raise RuntimeError(f"{job.name} failed: see {output} and {log}")
    return output


def run(jobs: list[Job], *, params: str, out_root: str, workers: int = 1) -> dict:
    """Execute jobs respecting dependencies; a failed job skips only what depends on it."""
    status: dict[str, str] = {}
    failed: dict[str, str] = {}
    pending = list(jobs)
    running: dict[Future, Job] = {}
    start = time.time()
    threads = 1 if workers > 1 else 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for job in list(pending):
                if any(status.get(dep) in ("failed", "skipped") for dep in job.after):
                    status[job.name] = "skipped"
                    pending.remove(job)
                elif all(status.get(dep) in ("done", "reused") for dep in job.after) and len(running) < workers:
                    pending.remove(job)
                    if is_done(job):
                        status[job.name] = "reused"
                        print(f"[{time.time() - start:7.0f}s] reuse {job.name}", flush=True)
                        continue
                    print(f"[{time.time() - start:7.0f}s] start {job.name}", flush=True)
                    running[pool.submit(execute, job, params=params, out_root=out_root, threads=threads)] = job
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    future.result()
                    status[job.name] = "done"
                except Exception as err:  # one failed variant must not stop the others
                    status[job.name] = "failed"
                    failed[job.name] = str(err)
                print(f"[{time.time() - start:7.0f}s] {status[job.name]} {job.name}", flush=True)
    return {"status": status, "failed": failed, "wall_s": round(time.time() - start, 1)}


def data_fingerprint(cfg, out_root: str, cache: dict) -> dict:
    """What a run's data were: the stored world's hashes, or the user's data paths (paper scale)."""
    if cfg.data.source == "world":
        world = artifact_dir(cfg, "world", out_root)
        if world not in cache:
            cache[world] = world_hashes(world) if (world / "manifest.json").is_file() else None
        hashed = cache[world]
        return {"world": str(world), "sha256": hashed and hashed["sha256"]}
    d = cfg.data
    paths = [*d.pair_shards, *d.noisy_pair_shards, *d.instruct_json,
             *(p for p in (d.open_vqa_images, d.open_vqa_videos, d.mme_root) if p)]
    return {"paths": path_fingerprints(paths)}


def write_manifest(jobs: list[Job], result: dict, *, params: str, out_root: str) -> Path:
    """``outputs/<scale>/manifest.json``: commit, versions, resolved configs, keys and data of every run."""
    scale = load(params, jobs[0].variant).scale
    runs, hashed = [], {}
    for job in jobs:
        cfg_path = job.out_dir / "config.yaml"
        cfg = load(params, job.variant, seed=job.seed)
        runs.append({"job": job.name, "key": job.key, "status": result["status"].get(job.name),
                     "dir": str(job.out_dir), "config": cfg_path.read_text() if cfg_path.exists() else None,
                     "data": data_fingerprint(cfg, out_root, hashed)})
    manifest = {"env": env_info(), "packages": package_versions(), "params": str(params),
                "wall_s": result["wall_s"], "failed": result["failed"], "runs": runs,
                "world_files": {str(world): h["files"] for world, h in hashed.items() if h}}
    return write_json(resolve(out_root) / scale / "manifest.json", manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lynx-study", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny", help="smoke | tiny | paper (params/<scale>.yaml)")
    parser.add_argument("--params", default=None, help="a scale file; overrides --scale")
    parser.add_argument("--variants", nargs="*", default=None, help="default: the scale file's study.variants")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="default: study.seeds")
    parser.add_argument("--workers", type=int, default=None, help="parallel notebooks (default: study.workers)")
    parser.add_argument("--out-root", default="outputs")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and what would be reused")
    args = parser.parse_args(argv)
    params = args.params or f"params/{args.scale}.yaml"
    base = load(params, "ours")
    variants = args.variants or base.study.variants
    seeds = args.seeds if args.seeds is not None else base.study.seeds
    jobs = plan(params, variants, seeds, args.out_root)
    if args.dry_run:
        for job in jobs:
            print(f"{'reuse' if is_done(job) else 'run  '} {job.name:40s} {job.notebook:20s} {job.out_dir}")
        return 0
    result = run(jobs, params=params, out_root=args.out_root, workers=args.workers or base.study.workers)
    path = write_manifest(jobs, result, params=params, out_root=args.out_root)
    print(f"study finished in {result['wall_s']:.0f} s; manifest: {path}")
    for name, err in result["failed"].items():
        print(f"FAILED {name}: {err}")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
