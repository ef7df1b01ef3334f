"""Position binding in captions: are the objects a model's replies name in the cells they name?

    # score replies already written (an evaluation folder's predictions.jsonl)
    .venv/bin/python benchmarks/caption_binding.py --params params/tiny.yaml \
        outputs/probes/bench/v3_after_pretrain_high_eval [more eval folders ...] [--out FILE.json]
    # ask a study model to describe Open-VQA-mini's first N images, then score those captions
    .venv/bin/python benchmarks/caption_binding.py --params params/tiny.yaml --variant ours --upto instruct \
        --describe 600 --describe-dir outputs/probes/bench/ours_describe [--out FILE.json]
    # a stage-1 recipe under test: trained (or reused by its key), then described
    .venv/bin/python benchmarks/caption_binding.py --upto pretrain_high --set model.resampler.locality=2 \
        --out-root outputs/probes --describe 600 --describe-dir outputs/probes/bench/locality2_describe

Folders hold an evaluation's ``predictions.jsonl`` (the study's eval, or ``benchmarks/visual_use.py
--eval-dir``) on Open-VQA-mini, whose scenes are regenerated from the params' world config: useful where
the replies are captions, as they are straight after stage 1. ``--describe`` builds the variant's model
with the stages up to ``--upto`` (under ``--out-root``; a stage with no finished run of its key,
e.g. under ``--set`` overrides, is trained first), asks it "Describe the image in
detail." (a stage-2 caption prompt) about each image, and writes the captions to ``--describe-dir``.
Prints how many claimed objects exist (beside the rate against another scene) and how many of those
sit in the claimed cell, row and column, beside the shuffled-cells and most-claimed-cell floors
(``lynxlib.evaluate.caption_claims``).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lynxlib.config import dotted_overrides, load  # noqa: E402
from lynxlib.evaluate.caption_claims import binding_summary, claim_frame  # noqa: E402
from lynxlib.evaluate.harness import read_predictions  # noqa: E402
from lynxlib.runs import atomic_write_text, env_info, write_json  # noqa: E402
from lynxlib.world.evalsets import open_vqa_mini  # noqa: E402
from lynxlib.world.scene import world_vocab  # noqa: E402

PROMPT = "Describe the image in detail."


def describe(cfg, *, upto: str, n: int, out_root: str, folder: Path, max_new_tokens: int) -> None:
    """Captions of Open-VQA-mini images 0..n-1 by the model after ``upto``, as ``folder/predictions.jsonl``."""
    from lynxlib import pipeline as P
    from lynxlib.data import PromptFormatter
    from lynxlib.evaluate import sets
    from lynxlib.inference import PromptItem, generate_answers

    world, backbones = P.ensure_world(cfg, out_root), P.load_backbones(cfg, out_root)
    chain = P.stage_chain(cfg, upto)
    for stage in chain:  # trained here when no finished run of its key exists (a --set recipe under test)
        P.ensure_stage(cfg, stage, out_root)
    model = P.build_run_model(cfg, backbones, after=chain, out_root=out_root).eval()
    size = sets.resolution_size(world, cfg.eval.resolution)
    model.set_resolution(size)
    cache = P.feature_cache(cfg, backbones, size, out_root) if model.tower is not None else None
    visuals = sets.eval_visuals(world, size=size, cache=cache, tower=model.tower)["open_vqa_mini"]
    items = [PromptItem.ask(PROMPT, visual_kind="image", visual_index=k, uid=f"describe/image/{k}") for k in range(n)]
    formatter = PromptFormatter(tokenizer=backbones.tokenizer, template=cfg.generation.template,
                                num_image_tokens=model.num_image_tokens, max_len=cfg.instruct.max_seq_len)
    answers = generate_answers(model, tokenizer=backbones.tokenizer, formatter=formatter, items=items,
                               visuals=visuals, batch_size=cfg.eval.batch_size, desc="describe",
                               stop=cfg.generation.template.split("{question}")[0].strip() or None,
                               max_new_tokens=max_new_tokens)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"part": "describe", "kind": "image", "uid": it.uid, "question": PROMPT, "prediction": a}
            for it, a in zip(items, answers)]
    atomic_write_text(folder / "predictions.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="*", help="evaluation folders with predictions.jsonl")
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--variant", default="ours")
    ap.add_argument("--set", action="append", default=[], help="override, e.g. model.resampler.locality=2")
    ap.add_argument("--upto", default="instruct", help="--describe: the last finished stage the model carries")
    ap.add_argument("--describe", type=int, default=0, help="caption this many Open-VQA-mini images first")
    ap.add_argument("--describe-dir", default="", help="--describe: where the captions are written")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.describe and not args.describe_dir:
        ap.error("--describe needs --describe-dir")
    if not args.folders and not args.describe:
        ap.error("give evaluation folders, or --describe N --describe-dir DIR")

    cfg = load(args.params, variant=args.variant, **dotted_overrides(args.set))
    folders = list(args.folders)
    if args.describe:
        describe(cfg, upto=args.upto, n=args.describe, out_root=args.out_root, folder=Path(args.describe_dir),
                 max_new_tokens=args.max_new_tokens)
        folders.append(args.describe_dir)
    _, _, scenes, _ = open_vqa_mini(cfg.world)
    vocab = world_vocab(cfg.world)
    results = {}
    for folder in folders:
        try:
            claims = claim_frame(read_predictions(folder), scenes, colours=vocab.colours, shapes=vocab.shapes)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
        results[folder] = binding_summary(claims)
        print(folder)
        print("  " + "\n  ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}"
                                 for k, v in results[folder].items()))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "results": results})


if __name__ == "__main__":
    main()
