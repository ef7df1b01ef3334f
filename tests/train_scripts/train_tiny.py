"""Train the tiny model with ``lynxlib.train.train_stage``; the launcher decides how.

    python tests/train_scripts/train_tiny.py --out DIR                      # one process
    ACCELERATE_USE_CPU=true torchrun --standalone --nproc_per_node 2 tests/train_scripts/train_tiny.py --out DIR
    ACCELERATE_USE_DEEPSPEED=true ACCELERATE_DEEPSPEED_CONFIG_FILE=params/launch/deepspeed_zero2.json \\
        DS_ACCELERATOR=cpu torchrun --standalone --nproc_per_node 2 tests/train_scripts/train_tiny.py --out DIR

Each rank also writes its final trainable weights to ``DIR/rank<r>.safetensors`` so a test can
compare ranks. ``--hang-save-at K`` makes the process stall inside the step-K checkpoint write
(after some of its files exist) so a test can kill it there.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import torch  # noqa: E402

torch.set_num_threads(1)

from safetensors.torch import load_file, save_file  # noqa: E402

from lynxlib import checkpoint  # noqa: E402
from lynxlib.train import train_stage  # noqa: E402
from tinytask import SyntheticSource, build_model, tiny_stage  # noqa: E402


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=4)
    ap.add_argument("--keep-last", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=3e-2)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--hang-save-at", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def hang_in_save(step: int) -> None:
    """Stall after the weights file of checkpoint ``step`` is written, before the folder is complete."""
    original = checkpoint.save_weights

    def slow(path, tensors):
        original(path, tensors)
        if Path(path).parent.name == f"{checkpoint.TMP_PREFIX}{checkpoint.step_name(step)}":
            time.sleep(600)

    checkpoint.save_weights = slow


def main() -> None:
    args = parse()
    if args.hang_save_at is not None:
        hang_in_save(args.hang_save_at)
    cfg = tiny_stage(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                     ckpt_every=args.ckpt_every, keep_last=args.keep_last)
    model = build_model(seed=args.seed, dropout=args.dropout)
    source = SyntheticSource(batch_size=args.batch_size, seed=args.seed, sleep=args.sleep)
    out = Path(args.out)
    result = train_stage(model=model, batches=source, cfg=cfg, out_dir=out, seed=args.seed)
    rank = int(os.environ.get("RANK", "0"))
    if any(hasattr(p, "ds_status") for p in model.parameters()):
        # ZeRO-3 leaves each rank a partition, and gathering after train_stage has torn the engine
        # down crashes at exit: the gathered copy is final/, written while the engine was alive.
        weights = load_file(str(out / "final" / "model.safetensors"))
    else:
        weights = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(weights, str(out / f"rank{rank}.safetensors"))
    if torch.distributed.is_initialized():  # leave together: a rank exiting mid-collective aborts its peer
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    print(f"rank {rank}: {result.steps} steps, final loss {result.final_loss:.6f}, resumed from "
          f"{result.resumed_from}, {result.wall_s:.2f} s", flush=True)


if __name__ == "__main__":
    main()
