#!/usr/bin/env python
"""Lynx at the paper's scale on one GPU: training and generation throughput, peak memory and MFU.

Builds the model of ``params/<scale>.yaml`` with random weights (throughput does not depend on the
values; no checkpoint can be downloaded): at ``paper`` scale the EVA ViT-g/14 tower (open_clip
``EVA01-g-14``), a LLaMA-7B-shaped decoder (vocabulary 32000 + pad), the resampler (32 latents, depth 3)
and adapters every M blocks. Then it times, on synthetic batches:

* stage 1 at the low and high resolution (224 / 420): frozen tower and LM, trainable resampler +
  adapters; each once with the tower in the step and once from cached vision tokens
  (``model.tower.encode_frames`` output, as the frozen-feature cache stores them);
* stage 2 with video (``world.frames`` = 5 frames per sample), with and without the cache;
* batched generation at the evaluation resolution: beam 5 and greedy, 64 new tokens (EOS suppressed
  so every call makes exactly that many), batch 1 and 16: latency per sample and new tokens/s;
* ``--sweep``: stage 1 at the low resolution over attention kernels x gradient checkpointing x batch
  sizes, to find the settings with the best MFU.

Model FLOPs and MFU: see ``lynxlib/perf.py`` (the formula is in its docstring and in RESULTS.md).
Warmup steps are excluded from the timings; CUDA is synchronised before the clock starts and stops.
The batch of a section is made once and reused (data loading is not measured). The markdown tables
and the run metadata are made by ``benchmarks/paper_scale_report.py``.

    python benchmarks/paper_scale.py --scale paper --out benchmarks/results/paper_h100.json
    python benchmarks/paper_scale.py --scale smoke --device cpu --steps 2 --warmup 1 --out /tmp/b.json
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

# benchmarks/ is importable from the repository root put on sys.path above
from benchmarks.paper_scale_report import cache_speedups, meta, table  # noqa: E402
from lynxlib.bench import (autocast, build_random, compile_blocks, peak_memory, pixels, set_checkpointing,  # noqa: E402
                           special_ids, timed, token_batch)
from lynxlib.build import freeze_for_stage  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.lynx import LynxModel  # noqa: E402
from lynxlib.perf import ModelShape, peak_tflops, recompute_flops, step_flops  # noqa: E402
from lynxlib.runs import write_json  # noqa: E402


@dataclass(frozen=True)
class Section:
    name: str
    batch: int
    resolution: int
    frames: int
    text_len: int
    trainable: tuple[str, ...]
    cached: bool


# ------------------------------------------------------------------------------------------- setup
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", default="paper", choices=("paper", "tiny", "smoke"), help="params/<scale>.yaml")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per section")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    p.add_argument("--batch-size", type=int, default=None, help="micro-batch of every training section "
                   "(default: the stage's batch_size in params)")
    p.add_argument("--text-len", type=int, default=80, help="stage-1 caption tokens (+ BOS + Q image tokens)")
    p.add_argument("--video-text-len", type=int, default=160, help="stage-2 instruction + response tokens")
    p.add_argument("--precision", default="auto", choices=("auto", "amp", "bf16", "fp32"),
                   help="amp: bf16 frozen weights, fp32 trainable weights, bf16 autocast (auto on cuda);\n"
                        "bf16: every weight bf16, no autocast; fp32 (auto on cpu)")
    p.add_argument("--attn", default="sdpa", choices=("sdpa", "eager", "flash_attention_2"), help="LM attention")
    p.add_argument("--grad-checkpointing", action="store_true", help="checkpoint every LM block")
    p.add_argument("--compile", action="store_true", help="torch.compile the LM and tower blocks (training)")
    p.add_argument("--skip-generation", action="store_true")
    p.add_argument("--new-tokens", type=int, default=64, help="generated tokens per sample (released: 64)")
    p.add_argument("--gen-batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--gen-repeats", type=int, default=2, help="timed generate calls per setting (after 1 warmup)")
    p.add_argument("--sweep", action="store_true", help="also sweep stage-1 settings for the best MFU")
    p.add_argument("--sweep-attn", nargs="+", default=["sdpa"], help="attention kernels the sweep tries")
    p.add_argument("--check-flops", action="store_true", help="count one step's FLOPs with FlopCounterMode "
                   "(math attention) and compare with the formula")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's peak bf16 TFLOP/s")
    p.add_argument("--out", default=None, help="write the results as JSON (atomic)")
    return p.parse_args(argv)


def sections(cfg, args) -> list[Section]:
    """Stage 1 at the low and the high resolution (224 / 420), stage 2 video at the instruct resolution;
    each with the tower in the step and from cached tokens. Batch sizes and trainable groups: params."""
    size = {"low": cfg.world.image_size_low, "high": cfg.world.image_size_high}
    plan = [("stage1_low", cfg.pretrain_low, size["low"], 1, args.text_len),
            ("stage1_high", cfg.pretrain_high, size["high"], 1, args.text_len),
            ("stage2_video", cfg.instruct, size[cfg.instruct.resolution], cfg.world.frames, args.video_text_len)]
    return [Section(f"{name}{'_cached' if cached else ''}", args.batch_size or stage.batch_size, res, frames, text,
                    tuple(stage.trainable), cached)
            for name, stage, res, frames, text in plan for cached in (False, True)]


def train_batch(model: LynxModel, sec: Section, *, ids: dict, device, precision: str) -> dict:
    batch = token_batch(ids, batch=sec.batch, q=model.num_image_tokens, text_len=sec.text_len, seed=0)
    batch = {k: v.to(device) for k, v in batch.items()}
    tower_dtype = next(model.tower.parameters()).dtype
    pix = pixels(batch=sec.batch, frames=sec.frames, resolution=sec.resolution, seed=1).to(device, tower_dtype)
    if not sec.cached:
        return batch | {"pixel_values": pix}
    with torch.no_grad(), autocast(device, precision):
        return batch | {"vision_tokens": model.tower.encode_frames(pix)}  # (B, F, N, Dv), what the cache stores


# -------------------------------------------------------------------------------------- training
def run_train(model: LynxModel, sec: Section, *, ctx: dict) -> dict:
    """Time ``ctx['steps']`` optimizer steps of one section; throughput, memory, FLOPs and MFU."""
    device, precision = ctx["device"], ctx["precision"]
    model.set_resolution(sec.resolution)
    model.zero_grad(set_to_none=True)  # a section that ran out of memory may have left gradients behind
    freeze_for_stage(model, list(sec.trainable))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.05, fused=device.type == "cuda")
    batch = train_batch(model, sec, ids=ctx["ids"], device=device, precision=precision)
    model.train()

    def step():
        with autocast(device, precision):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    step_s, loss = timed(step, steps=ctx["steps"], warmup=ctx["warmup"], device=device)
    seq = batch["input_ids"].shape[1]
    flops = step_flops(ctx["shape"], batch=sec.batch, seq_len=seq, frames=sec.frames,
                       resolution=sec.resolution, cached=sec.cached)
    extra = recompute_flops(ctx["shape"], batch=sec.batch, seq_len=seq) if model.lm.is_activation_checkpointing else 0.0
    mem, mem_kind = peak_memory(device)
    del optimizer, batch
    return {"batch": sec.batch, "seq_len": seq, "frames": sec.frames, "resolution": sec.resolution,
            "cached": sec.cached, "trainable": list(sec.trainable), "trainable_params": sum(p.numel() for p in params),
            "step_s": step_s, "samples_per_s": sec.batch / step_s, "tokens_per_s": sec.batch * seq / step_s,
            "model_tflop_per_step": flops["total"] / 1e12,
            "flops_by_part": {k: v / 1e12 for k, v in flops.items() if k != "total"},
            "achieved_tflops": flops["total"] / step_s / 1e12,
            "hardware_tflops": (flops["total"] + extra) / step_s / 1e12,
            "mfu": flops["total"] / step_s / (ctx["peak"] * 1e12) if ctx["peak"] else None,
            "peak_mem_gib": mem, "peak_mem_kind": mem_kind, "loss": float(loss)}


def guarded(oom_device: torch.device, fn, *args, **kwargs) -> dict:
    """Run a section; an out-of-memory error becomes a result row instead of ending the run."""
    try:
        return fn(*args, **kwargs)
    except torch.OutOfMemoryError as err:
        if oom_device.type == "cuda":
            torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(err).splitlines()[0]}"}


# ------------------------------------------------------------------------------------ generation
def run_generation(model: LynxModel, *, cfg, ctx: dict) -> dict:
    """Latency per sample and new tokens/s of ``generate`` (beam 5 and greedy) at each batch size."""
    device, ids, n_new = ctx["device"], ctx["ids"], ctx["args"].new_tokens
    size = cfg.world.image_size_high if cfg.eval.resolution == "high" else cfg.world.image_size_low
    model.set_resolution(size)
    model.eval()
    tower_dtype = next(model.tower.parameters()).dtype
    out = {}
    stance = torch.compiler.set_stance("force_eager") if ctx["args"].compile else contextlib.nullcontext()
    with stance:
        for label, beams in (("beam5", 5), ("greedy", 1)):
            for bs in ctx["args"].gen_batches:
                out[f"{label}_b{bs}"] = guarded(device, _generate_one, model, device=device, ids=ids, bs=bs,
                                                beams=beams, n_new=n_new, size=size, tower_dtype=tower_dtype, ctx=ctx)
    return out


def _generate_one(model, *, device, ids, bs, beams, n_new, size, tower_dtype, ctx) -> dict:
    prompt = token_batch(ids, batch=bs, q=model.num_image_tokens, text_len=24, seed=2)
    inputs = {"input_ids": prompt["input_ids"].to(device), "attention_mask": prompt["attention_mask"].to(device),
              "pixel_values": pixels(batch=bs, frames=1, resolution=size, seed=3).to(device, tower_dtype)}

    def call():
        with autocast(device, ctx["precision"]):
            return model.generate(**inputs, num_beams=beams, max_new_tokens=n_new, min_new_tokens=n_new)

    call_s, tokens = timed(call, steps=ctx["args"].gen_repeats, warmup=1, device=device)
    mem, mem_kind = peak_memory(device)
    new = tokens.shape[1]
    return {"batch": bs, "num_beams": beams, "prompt_len": inputs["input_ids"].shape[1], "resolution": size,
            "new_tokens": new, "call_s": call_s, "latency_s_per_sample": call_s / bs,
            "new_tokens_per_s": bs * new / call_s, "peak_mem_gib": mem, "peak_mem_kind": mem_kind}


# ----------------------------------------------------------------------------------------- sweep
def run_sweep(model: LynxModel, base: Section, *, ctx: dict) -> list[dict]:
    """Stage 1 (low resolution, tower in the step) over attention x checkpointing x batch size."""
    rows = []
    for attn in ctx["args"].sweep_attn:
        try:
            model.lm.set_attn_implementation(attn)
        except (ImportError, ValueError) as err:
            rows.append({"attn": attn, "error": f"unavailable: {str(err).splitlines()[0]}"})
            continue
        for gc in (False, True):
            set_checkpointing(model, gc)
            for bs in sorted({max(1, base.batch // 2), base.batch, base.batch * 2}):
                sec = Section(base.name, bs, base.resolution, base.frames, base.text_len, base.trainable, False)
                result = guarded(ctx["device"], run_train, model, sec, ctx=ctx)
                rows.append({"attn": attn, "grad_checkpointing": gc, "batch": bs} | result)
    model.lm.set_attn_implementation(ctx["args"].attn)
    set_checkpointing(model, ctx["args"].grad_checkpointing)
    return rows


# ----------------------------------------------------------------------------------- flop check
def check_flops(model: LynxModel, sec: Section, *, ctx: dict) -> dict:
    """One step's FLOPs counted by FlopCounterMode (math attention, so attention matmuls are seen)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model.set_resolution(sec.resolution)
    freeze_for_stage(model, list(sec.trainable))
    batch = train_batch(model, sec, ids=ctx["ids"], device=ctx["device"], precision=ctx["precision"])
    model.train()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # open_clip ViT: the fused MHA kernel hides its matmuls
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        with autocast(ctx["device"], ctx["precision"]):
            loss = model(**batch).loss
        loss.backward()
    torch.backends.mha.set_fastpath_enabled(fastpath)
    model.zero_grad(set_to_none=True)
    formula = step_flops(ctx["shape"], batch=sec.batch, seq_len=batch["input_ids"].shape[1], frames=sec.frames,
                         resolution=sec.resolution, cached=sec.cached)["total"]
    counted = counter.get_total_flops()
    return {"section": sec.name, "formula_tflop": formula / 1e12, "counted_tflop": counted / 1e12,
            "ratio": counted / formula}


# ------------------------------------------------------------------------------------------ main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = args.precision if args.precision != "auto" else ("amp" if device.type == "cuda" else "fp32")
    cfg = load(ROOT / "params" / f"{args.scale}.yaml", "ours")
    torch.manual_seed(0)
    built = time.perf_counter()
    model = build_random(cfg, device=device, precision=precision, attn=args.attn)
    build_s = time.perf_counter() - built
    set_checkpointing(model, args.grad_checkpointing)
    if args.compile:
        compile_blocks(model)
    peak, peak_source = (args.peak_tflops, "--peak-tflops") if args.peak_tflops else peak_tflops(device)
    ctx = {"device": device, "precision": precision, "ids": special_ids(cfg), "shape": ModelShape.of(model),
           "peak": peak, "steps": args.steps, "warmup": args.warmup, "args": args}
    results = {"meta": meta(cfg, model, args=args, device=device, precision=precision, peak=peak,
                            peak_source=peak_source) | {"build_s": build_s}, "train": {}}
    plan = sections(cfg, args)
    if args.check_flops:
        results["flops_check"] = [check_flops(model, sec, ctx=ctx) for sec in plan if sec.name != "stage1_high"]
    for sec in plan:
        results["train"][sec.name] = guarded(device, run_train, model, sec, ctx=ctx)
        print(f"{sec.name}: {results['train'][sec.name]}", file=sys.stderr, flush=True)
    results["cache_speedup"] = cache_speedups(results["train"])
    if not args.skip_generation:
        results["generation"] = run_generation(model, cfg=cfg, ctx=ctx)
    if args.sweep:
        results["sweep"] = run_sweep(model, plan[0], ctx=ctx)
    print(table(results))
    if args.out:
        write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
