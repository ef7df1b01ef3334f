"""Running a benchmark script at smoke scale into a temporary out root, as the benchmark tests do."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
                    "DS_ACCELERATOR": "cpu"}


def run(script: str, out_root: Path, out: Path, *extra: str) -> dict:
    """``benchmarks/<script>`` on smoke params, one thread: its stdout and the JSON it wrote to ``out``."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), "--params", "params/smoke.yaml", "--threads", "1",
           "--out-root", str(out_root), "--out", str(out), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"stdout": proc.stdout, "json": json.loads(out.read_text())}
