"""Launching, waiting for and killing the training scripts from tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "train_tiny.py"
BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    """A clean environment: one thread per process, no inherited accelerate/DeepSpeed switches."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "DEEPSPEED_"))}
    base.update(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu", PYTHONHASHSEED="0", HF_HUB_OFFLINE="1")
    base.update(extra)
    return base


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def script_cmd(launcher: list[str], out: Path, *args: str) -> list[str]:
    return [*launcher, str(SCRIPT), "--out", str(out), *args]


def python() -> list[str]:
    return [sys.executable]


def torchrun(nproc: int = 2) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}"]


def accelerate(config: Path) -> list[str]:
    return [str(BIN / "accelerate"), "launch", "--config_file", str(config), "--main_process_port", str(free_port())]


def run(cmd: list[str], *, log: Path, timeout: float = 120, **env_extra: str) -> subprocess.CompletedProcess:
    """Run to completion, keeping the whole output in ``log``; a failure shows where the error is."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env(**env_extra), capture_output=True, text=True, timeout=timeout)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error:" in line][:20]
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}); full output in {log}\n" + "\n".join(errors))
    return proc


def start(cmd: list[str], *, log: Path, **env_extra: str) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=ROOT, env=env(**env_extra), stdout=handle, stderr=subprocess.STDOUT)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            kill_tree(proc)
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launched process and every descendant (torchrun puts workers in new sessions)."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        try:
            os.kill(member.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs(family, timeout=30)
