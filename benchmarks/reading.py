"""Can the stage-0 LMs answer a question about a scene description in their context? Per question type.

    .venv/bin/python benchmarks/reading.py --params params/tiny.yaml [--set key=value] [--backbones DIR] [--world DIR] \
        [--passages 1024] [--vicuna-steps 600 --vicuna-lr 1e-3] [--threads 1] [--out FILE.json]

Loads the scale's stage-0 artifact (content-addressed under ``outputs/<scale>/shared``, or
``--backbones``) and scores :func:`lynxlib.backbones.reading_accuracy` on held-out reading passages:
"LLaMA" in its corpus format, "Vicuna" in the chat template, each beside the same questions asked after
another scene's description (what the question alone gives); and "LLaMA" on the bare look-up lines
(a colour by its shape, where a shape is; each beside another line's list). With ``--vicuna-steps`` it also re-tunes
"Vicuna" from "LLaMA" for that many steps (not saved) and scores it: does more response-only training
on reading instructions teach the LM to bind an attribute to its noun?
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lynxlib.backbones import heldout_lookups, heldout_reading, reading_accuracy, reading_template  # noqa: E402
from lynxlib.backbones.lm import instruct_lm, world_texts  # noqa: E402
from lynxlib.build import load_lm  # noqa: E402
from lynxlib.config import deep_merge, dotted_overrides, load  # noqa: E402
from lynxlib.runs import env_info, set_threads, write_json  # noqa: E402
from lynxlib.stages import artifact_dir  # noqa: E402
from lynxlib.tokenizer import load_tokenizer  # noqa: E402
from lynxlib.world import WorldStore  # noqa: E402
from lynxlib.world.reading import LOOKUP_PROMPT  # noqa: E402


def table(name: str, result: dict) -> str:
    lines = [f"{name}: exact {result['exact']:.3f}, shuffled context {result['shuffled']:.3f} (n={result['n']})"]
    lines += [f"  {q:14s} n={r['n']:4d}  exact {r['exact']:.2f}  shuffled {r['shuffled']:.2f}"
              for q, r in result["by_qtype"].items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--set", action="append", default=[], help="override, e.g. world.recall_positions=0.333")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--backbones", default="", help="stage-0 folder (default: the scale's shared artifact)")
    ap.add_argument("--world", default="", help="world folder (default: the scale's shared artifact)")
    ap.add_argument("--passages", type=int, default=1024)
    ap.add_argument("--vicuna-steps", type=int, default=0)
    ap.add_argument("--vicuna-lr", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    set_threads(args.threads)
    cfg = load(args.params, **dotted_overrides(args.set))
    root = args.backbones or str(artifact_dir(cfg, "backbones", args.out_root))
    tok = load_tokenizer(f"{root}/tokenizer")
    passages = heldout_reading(cfg, args.passages)
    chat = reading_template(cfg)
    llama = load_lm(f"{root}/llama")
    results = {"llama": reading_accuracy(llama, tok, passages),
               "vicuna": reading_accuracy(load_lm(f"{root}/vicuna"), tok, passages, template=chat)}
    # the bare look-ups (benchmarks/lm_reading.py's): "The star is" -> "blue" / "at the top left"
    for kind, lines in heldout_lookups(cfg, args.passages).items():
        results[f"llama_lookup_{kind}"] = reading_accuracy(llama, tok, lines, template=LOOKUP_PROMPT)
    if args.vicuna_steps:
        overrides = {"vicuna_steps": args.vicuna_steps} | ({"vicuna_lr": args.vicuna_lr} if args.vicuna_lr else {})
        tuned_cfg = load(args.params, **deep_merge(dotted_overrides(args.set), {"backbones": overrides}))
        world = WorldStore(args.world or artifact_dir(cfg, "world", args.out_root))
        tuned, _ = instruct_lm(tuned_cfg, tok, load_lm(f"{root}/llama"), world_texts(world)["instructions"])
        results[f"vicuna_{args.vicuna_steps}_steps"] = reading_accuracy(tuned, tok, passages, template=chat)
    for name, result in results.items():
        print(table(name, result))
    if args.out:
        write_json(args.out, {"args": vars(args), "backbones": root, "env": env_info(), "results": results})


if __name__ == "__main__":
    main()
