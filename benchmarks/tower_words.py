"""Can the tiny tower learn to read the scene's word at all? One supervised task, whole images.

    .venv/bin/python benchmarks/tower_words.py --params params/tiny.yaml [--steps 400] \
        [--setups vit_whole_patch vit_whole_conv] [--size 128] [--threads 1] [--out FILE.json]

The OCR category needs the tower's tokens to carry the word on a sign, cover or poster; stage 0's
linear probes find it at chance in every recipe (docs/calibration.md). This isolates the question
from stage 0's other losses: the tower's ViT (as ``params`` builds it, patch or conv stem), trained from scratch on
nothing but the word (24 classes) from the mean of the word's grid-cell tokens of whole images at
``--size`` px, ``--steps`` steps of 32 scenes that carry a word, Adam at lr 5e-4. Held out: the last
``--heldout`` such training scenes (at most a quarter of them). The reference is
``benchmarks/word_legibility.py``: a 3-layer CNN on the word's cell crop reads 0.97 at 128 px.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lynxlib.backbones.cells import cell_mean  # noqa: E402
from lynxlib.backbones.tower import visual_forward, world_pairs  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.runs import env_info, resolve, set_threads, write_json  # noqa: E402
from lynxlib.stages import artifact_dir  # noqa: E402
from lynxlib.vision import create_clip, to_pixel_values  # noqa: E402
from lynxlib.world import WorldStore  # noqa: E402
from lynxlib.world.scene import world_vocab  # noqa: E402

SETUPS = {"vit_whole_patch": "patch", "vit_whole_conv": "conv"}


class WordCellHead(torch.nn.Module):
    """Whole image (B, 3, S, S) -> mean of the word's cell tokens -> (B, words) logits."""

    def __init__(self, visual, feature_layer: int, classes: int, width: int):
        super().__init__()
        self.visual, self.feature_layer = visual, feature_layer
        self.head = torch.nn.Linear(width, classes)

    def forward(self, pixels: torch.Tensor, scenes) -> torch.Tensor:
        tokens = visual_forward(self.visual, pixels, self.feature_layer)[1]  # (B, g*g, D)
        cells = torch.stack([cell_mean(tokens, b, s.text.row, s.text.col, s.grid) for b, s in enumerate(scenes)])
        return self.head(cells)


def batch(images, scenes, rows, words):
    rows = np.sort(rows)
    picked = [scenes[i] for i in rows]
    labels = torch.tensor([words.index(s.text.word) for s in picked])
    return to_pixel_values(np.asarray(images[rows])), picked, labels


def run_setup(setup: str, params: str, images, scenes, train_rows, test_rows, steps: int, seed: int,
              log_every: int) -> dict:
    cfg = load(params, vision={"stem": SETUPS[setup]})
    words = list(world_vocab(cfg.world).words)
    torch.manual_seed(seed)
    model = WordCellHead(create_clip(cfg).visual, cfg.vision.feature_layer, len(words), cfg.vision.width)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    draw = np.random.default_rng(seed)
    hits, curve = [], []
    size = min(32, len(train_rows))
    for step in tqdm(range(steps), desc=setup, mininterval=5):
        pixels, picked, labels = batch(images, scenes, draw.choice(train_rows, size=size, replace=False), words)
        logits = model(pixels, picked)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hits.append(float((logits.argmax(1) == labels).float().mean()))
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "train_acc": float(np.mean(hits[-log_every:])), "loss": loss.item()})
    model.eval()
    correct = 0
    with torch.no_grad():
        for rows in np.array_split(test_rows, 8):
            pixels, picked, labels = batch(images, scenes, rows, words)
            correct += int((model(pixels, picked).argmax(1) == labels).sum())
    return {"curve": curve, "heldout_acc": correct / len(test_rows), "n_heldout": len(test_rows),
            "chance": 1 / len(words)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--world", default=None, help="world folder (default: the scale's, under outputs/)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--size", type=int, default=None, help="image side (default: the world's high resolution)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heldout", type=int, default=400, help="last word-carrying training scenes held out")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    cfg = load(args.params)
    size = args.size or cfg.world.image_size_high
    images, _, scenes = world_pairs(cfg, WorldStore(args.world or artifact_dir(cfg, "world")))
    if size not in images:
        raise SystemExit(f"--size {size}: the world has images at {sorted(images)} px only")
    with_word = np.array([i for i, s in enumerate(scenes) if s.text is not None])
    heldout = min(args.heldout, len(with_word) // 4)
    if heldout < 1:
        raise SystemExit(f"only {len(with_word)} training scenes carry a word: too few to hold any out")
    train_rows, test_rows = with_word[:-heldout], with_word[-heldout:]
    results = {}
    for setup in args.setups:
        results[setup] = run_setup(setup, args.params, images[size], scenes, train_rows, test_rows, args.steps,
                                   args.seed, args.log_every)
        curve = " ".join(f"{c['train_acc']:.2f}" for c in results[setup]["curve"])
        r = results[setup]
        print(f"{setup:18s} train acc every {args.log_every} steps: {curve}  "
              f"held-out {r['heldout_acc']:.3f} (chance {r['chance']:.3f})", flush=True)
    if args.out:
        write_json(resolve(args.out), {"params": args.params, "steps": args.steps, "size": size,
                                       "results": results, "env": env_info()})


if __name__ == "__main__":
    main()
