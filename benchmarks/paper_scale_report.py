"""The report of ``benchmarks/paper_scale.py``: its markdown table and the run metadata in its JSON.

* :func:`table`: train sections, cache speed-ups, generation and the sweep as markdown tables;
* :func:`cache_speedups`: step time with the tower in the step over step time from cached tokens;
* :func:`meta`: scale, device, precision, settings, parameter counts and package versions.
"""
from __future__ import annotations

import torch

from lynxlib.bench import special_ids
from lynxlib.build import param_groups
from lynxlib.lynx import LynxModel
from lynxlib.runs import package_versions


A6000_REPORT = ("bytedance/lynx-llm issue #1 (2023-07-20): a user running the released model on an A6000 "
                "reports 'inference time taking over ten seconds' per sample")


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(results: dict) -> str:
    """The measured numbers as a markdown table (train sections, cache speed-ups, generation)."""
    lines = ["| section | res | frames | batch | seq | step ms | samples/s | tokens/s | TFLOP/step | TFLOP/s | MFU "
             "| peak GiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["train"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} |")
            continue
        lines.append(f"| {name} | {r['resolution']} | {r['frames']} | {r['batch']} | {r['seq_len']} | "
                     f"{1e3 * r['step_s']:.1f} | {r['samples_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
                     f"{r['model_tflop_per_step']:.4g} | {r['achieved_tflops']:.4g} | "
                     f"{fmt(r['mfu'] and 100 * r['mfu'], '.1f')}{'%' if r['mfu'] else ''} | {r['peak_mem_gib']:.2f} |")
    if results.get("cache_speedup"):
        lines += ["", "cache speed-up (step time without / with cached vision tokens): "
                  + ", ".join(f"{k} {v:.2f}x" for k, v in results["cache_speedup"].items())]
    if results.get("generation"):
        lines += ["", "| generation | batch | new tokens | s per call | latency s/sample | new tokens/s | peak GiB |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in results["generation"].items():
            lines.append(f"| {name} | {r['error']} |" if "error" in r else
                         f"| {name} | {r['batch']} | {r['new_tokens']} | {r['call_s']:.3f} | "
                         f"{r['latency_s_per_sample']:.3f} | {r['new_tokens_per_s']:.1f} | {r['peak_mem_gib']:.2f} |")
    if results.get("sweep"):
        lines += ["", "| sweep (stage 1, low res) | attn | grad ckpt | batch | samples/s | MFU | peak GiB |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(results["sweep"], key=lambda r: -(r.get("mfu") or r.get("achieved_tflops") or 0)):
            lines.append(f"| | {r['attn']} | {r.get('grad_checkpointing', '')} | {r.get('batch', '')} | "
                         + (f"{r['error']} | | |" if "error" in r else
                            f"{r['samples_per_s']:.2f} | {fmt(r['mfu'] and 100 * r['mfu'], '.1f')} | "
                            f"{r['peak_mem_gib']:.2f} |"))
    return "\n".join(lines)


def cache_speedups(train: dict) -> dict[str, float]:
    return {name: train[name]["step_s"] / train[f"{name}_cached"]["step_s"] for name in train
            if not name.endswith("_cached") and f"{name}_cached" in train
            and "error" not in train[name] and "error" not in train[f"{name}_cached"]}


def meta(cfg, model: LynxModel, *, args, device, precision, peak, peak_source) -> dict:
    counts = {g: sum(p.numel() for p in ps.values()) for g, ps in param_groups(model).items()}
    return {"scale": args.scale, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch_threads": torch.get_num_threads(), "precision": precision, "attn": args.attn,
            "grad_checkpointing": args.grad_checkpointing, "compile": args.compile, "steps": args.steps,
            "warmup": args.warmup, "peak_tflops": peak, "peak_source": peak_source, "params": counts,
            "lm": {"hidden": cfg.lm.hidden_size, "layers": cfg.lm.num_layers, "vocab": special_ids(cfg)["vocab"]},
            "tower": cfg.vision.open_clip_name, "num_latents": model.num_image_tokens,
            "adapter_layers": len(model.adapter_layers), "a6000_reference": A6000_REPORT,
            "flop_formula": "lynxlib/perf.py module docstring", "versions": package_versions()}
