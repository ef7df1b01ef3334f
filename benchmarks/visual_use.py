"""How much each task's answers draw on the image: loss with true vs another sample's visuals.

    .venv/bin/python benchmarks/visual_use.py --params params/tiny.yaml --variant ours \
        [--after pretrain_low,pretrain_high] [--init DIR,...] \
        [--train-mixture vqa_color:1,vqa_place:1 --train-steps 300 --lr 2e-3 --resolution high] \
        [--trainable adapters,frame_pos] [--set model.resampler.locality=2] \
        [--tasks caption_pair,vqa_place,...] [--batches 3] [--threads 1] [--out FILE.json] [--eval-dir DIR] \
        [--visuals oracle [--oracle-cells]]

The model is the variant's, with the weights of the finished stages ``--after`` (content-addressed
artifacts under ``outputs/<scale>/shared``) and then of any run folders ``--init`` (a ``final/``
inside). With ``--train-mixture`` it first trains the instruct stage's trainable groups on that
mixture for ``--train-steps`` (a probe run into ``--probe-dir``, not a study artifact): this is how
the tiny world's calibration asked "can one task alone be learned from this state, and how fast?".
Every row is measured on held-out draws (seed 999) of one task at ``--resolution``. With ``--eval-dir``
the model is also scored on Open-VQA-mini exactly as the study's evaluation scores a variant.
``--visuals oracle`` replaces the tower's tokens, in training and evaluation alike, by scene-graph
tokens in the tower's layout (``lynxlib/evaluate/oracle.py``: every patch carries its cell's object,
bound): whether the bridge and the LM can bind when the tokens are perfect; ``--oracle-cells`` adds
each patch's grid-cell row and column, the coordinates Spatial answers are phrased in.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
from pathlib import Path

import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from lynxlib import pipeline as P  # noqa: E402
from lynxlib.build import freeze_for_stage  # noqa: E402
from lynxlib.config import dotted_overrides, load  # noqa: E402
from lynxlib.data import ArrayVisuals, MixtureBatches, PromptFormatter  # noqa: E402
from lynxlib.evaluate.visual_use import visual_use_table  # noqa: E402
from lynxlib.runs import env_info, set_threads, write_json  # noqa: E402
from lynxlib.train import train_stage  # noqa: E402

TASKS = "caption_pair,vqa_place,vqa_color,vqa_count,vqa_object,vqa_spatial,vqa_ocr"


def parse_mixture(text: str) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in (item.split(":") for item in text.split(",") if item)}
    except ValueError as err:
        raise SystemExit(f"--train-mixture {text!r}: expected task:weight,task:weight ({err})") from None


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--variant", default="ours")
    ap.add_argument("--set", action="append", default=[], help="override, e.g. model.resampler.locality=2")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--after", default="", help="finished stages whose weights to load, oldest first")
    ap.add_argument("--init", default="", help="run folders (with final/) to load after --after")
    ap.add_argument("--train-mixture", default="")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--resolution", default="high")
    ap.add_argument("--trainable", default="", help="groups the probe run trains (default: the instruct stage's)")
    ap.add_argument("--probe-dir", default="outputs/bench/visual_use_probe")
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--eval-dir", default="", help="also score Open-VQA-mini (the study's eval) into this folder")
    ap.add_argument("--visuals", choices=("tower", "oracle"), default="tower",
                    help="the tower's cached tokens, or scene-graph tokens in its layout")
    ap.add_argument("--oracle-cells", action="store_true", help="oracle tokens also name their grid cell")
    return ap.parse_args()


def train_probe(model, make_batches, stage, args: argparse.Namespace, cfg) -> None:
    """``--train-mixture`` for ``--train-steps`` at ``--lr``, training ``--trainable`` (or the stage's groups)."""
    probe = dataclasses.replace(stage, mixture=parse_mixture(args.train_mixture), lr=args.lr,
                                steps=args.train_steps, warmup_steps=min(20, args.train_steps),
                                ckpt_every=10**9, log_every=50,
                                trainable=args.trainable.split(",") if args.trainable else stage.trainable)
    freeze_for_stage(model, probe.trainable)
    shutil.rmtree(args.probe_dir, ignore_errors=True)
    train_stage(model=model, batches=make_batches(probe, seed=cfg.seed), cfg=probe, out_dir=args.probe_dir,
                seed=cfg.seed)


def main() -> None:
    args = parse_args()
    set_threads(args.threads)

    cfg = load(args.params, args.variant, **dotted_overrides(args.set))
    world, backbones = P.ensure_world(cfg, args.out_root), P.load_backbones(cfg, args.out_root)
    model = P.build_run_model(cfg, backbones, after=[s for s in args.after.split(",") if s], out_root=args.out_root)
    for folder in [f for f in args.init.split(",") if f]:
        P.load_stage_weights(model, Path(folder))
    stage = dataclasses.replace(cfg.instruct, resolution=args.resolution)
    formatter = PromptFormatter(tokenizer=backbones.tokenizer, template=cfg.generation.template,
                                num_image_tokens=model.num_image_tokens, max_len=stage.max_seq_len)

    oracle = None
    if args.visuals == "oracle":
        oracle = oracle_cache(cfg, world, model, args.out_root, cells=args.oracle_cells)

    def make_batches(stage_cfg, seed: int = 999):
        visuals = (P.world_visuals(cfg, world, model, backbones, stage_cfg.resolution, out_root=args.out_root)
                   if oracle is None else ArrayVisuals(images=None, videos=None, cache=oracle,
                                                       cache_names={"image": "train_images", "video": "train_videos"}))
        return MixtureBatches(world_cfg=cfg.world, scenes=world.scenes("train"), clips=world.clips("train"),
                              visuals=visuals, formatter=formatter, stage=stage_cfg, seed=seed,
                              sees_images=not cfg.model.blind, pass_has_visual=False)

    if args.train_mixture:
        train_probe(model, make_batches, stage, args, cfg)
    table = visual_use_table(model, make_batches, args.tasks.split(","), n_batches=args.batches,
                             stage=stage)
    print(table.round(3).to_string())
    openvqa = evaluate_openvqa(cfg, model, backbones, world, args, oracle) if args.eval_dir else None
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "rows": table.reset_index().to_dict("records"),
                              "openvqa": openvqa})


def oracle_cache(cfg, world, model, out_root: str, *, cells: bool = False):
    """A feature cache of scene-graph tokens (train and every eval split) at the high resolution's layout."""
    from lynxlib.evaluate.oracle import OracleTable, write_oracle_cache
    from lynxlib.evaluate.sets import SPLIT_KINDS
    from lynxlib.features import FeatureCache
    from lynxlib.runs import resolve
    from lynxlib.stages import stage_key

    if cfg.eval.resolution != "high":
        raise SystemExit(f"--visuals oracle scores at high resolution; eval.resolution is {cfg.eval.resolution!r}")
    side = P.image_size(cfg, "high") // model.tower.patch_size
    table = OracleTable.draw(dim=model.tower.width, side=side, seed=cfg.seed, cells=cells)
    name = f"oracle-{stage_key(cfg, 'world')}-{side}x{side}" + ("-cells" if cells else "")
    cache = FeatureCache(resolve(out_root) / cfg.scale / "features", name)
    write_oracle_cache(cache, world, table, splits={"train": ("image", "video"), **SPLIT_KINDS})
    return cache


def evaluate_openvqa(cfg, model, backbones, world, args, oracle=None) -> list[dict]:
    """Open-VQA-mini accuracy per category of the probed model, as the study's eval scores it."""
    from lynxlib.evaluate.harness import evaluate_model

    cache = oracle or P.feature_cache(cfg, backbones, P.image_size(cfg, cfg.eval.resolution), args.out_root)
    evaluate_model(cfg, model=model.eval(), tokenizer=backbones.tokenizer, world=world, cache=cache,
                   out_dir=args.eval_dir, parts=("openvqa",), name=f"probe:{args.probe_dir}")
    rows = pd.read_csv(Path(args.eval_dir) / "openvqa.csv")
    print(rows[["kind", "category", "accuracy", "se"]].round(1).to_string(index=False))
    return rows[["kind", "category", "correct", "total", "accuracy", "se"]].to_dict("records")


if __name__ == "__main__":
    main()
