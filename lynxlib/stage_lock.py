"""One trainer per stage folder: a ``LOCK`` file naming the process that trains it.

Stages are shared by key (``outputs/<scale>/shared/<stage>-<key>``), so two study runs on one output
root (a second ``python -m lynxlib.study --variants ...`` beside the first, or two notebooks) can
reach the same unfinished stage. Both would resume from the same checkpoint and write the same
checkpoints and ``metrics.jsonl``. The lock makes the second one stop at once with the holder's pid.

A lock left by a process that is gone (killed, machine restarted) is stale: the next trainer takes
it over, so a run killed at any moment still resumes. Liveness is checked only on the same host;
a lock from another host is honoured until removed by hand.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path


class StageBusyError(RuntimeError):
    """Another live process is training this stage folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return True


def _holder(path: Path) -> dict | None:
    """The lock's owner, or None when the file is unreadable or half-written (treated as stale)."""
    try:
        owner = json.loads(path.read_text())
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
    except (OSError, json.JSONDecodeError):
        return None


def _take(path: Path, me: dict) -> bool:
    """Create the lock with its content in one step (a hard link of a finished temp file fails if the
    lock exists), so no other process ever reads it empty and mistakes it for stale; False if taken."""
    temp = path.with_name(f"{path.name}.{me['pid']}.tmp")
    temp.write_text(json.dumps(me))
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def stage_lock(out_dir: str | Path):
    """Hold ``out_dir/LOCK`` while training; raise :class:`StageBusyError` if a live process holds it."""
    path = Path(out_dir) / "LOCK"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    while not _take(path, me):
        owner = _holder(path)
        if owner is not None and (owner.get("host") != me["host"] or _alive(owner["pid"])):
            raise StageBusyError(
                f"{path.parent} is being trained by process {owner['pid']} on {owner.get('host')} "
                f"(its {path.name} file); wait for it to finish, or delete {path} if that process is gone")
        path.unlink(missing_ok=True)  # stale: its process is gone; take it over
    try:
        yield path
    finally:
        if _holder(path) == me:
            path.unlink(missing_ok=True)
