"""Why the tiny tower does not see shapes: how fast each vision model learns an object's shape.

    .venv/bin/python benchmarks/tower_shapes.py --params params/tiny.yaml [--world DIR] [--steps 300] \
        [--setups cnn_crops vit_crops ...] [--threads 1] [--out FILE.json]

One supervised task, side by side in one run: the shape of each object in the world's training
scenes (the 6 object shapes, balanced), from scratch, ``--steps`` steps of 32 images (or 64 object crops), Adam
at lr 5e-4. Setups, from easiest to what stage 0 does:

* ``cnn_crops``: a 3-layer CNN on object-centred crops (the cell, 64-px images);
* ``vit_crops``: the tower's ViT (patch stem, 4 blocks) on the same crops, mean-pooled feature tokens;
* ``vit_whole_patch``: the ViT on whole images, the mean of the object's cell tokens (what the probes
  and the grounded loss use);
* ``vit_whole_conv``: the same with the conv stem (``vision.stem: conv``);
* ``vit_whole_conv_multi``: the same with colour and size heads beside shape (stage 0 trains
  several attributes at once).

Prints the running train accuracy every 50 steps and the held-out accuracy on the last 512 training
scenes, which no setup trains on.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lynxlib.backbones.cells import cell_mean, cell_pixels  # noqa: E402
from lynxlib.backbones.tower import visual_forward, world_pairs  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.runs import env_info, resolve, set_threads, write_json  # noqa: E402
from lynxlib.stages import artifact_dir  # noqa: E402
from lynxlib.vision import create_clip, to_pixel_values  # noqa: E402
from lynxlib.world import WorldStore  # noqa: E402
from lynxlib.world.vocab import COLOURS, SHAPES, SIZES  # noqa: E402

SETUPS = ("cnn_crops", "vit_crops", "vit_whole_patch", "vit_whole_conv", "vit_whole_conv_multi")
HEADS = {"shape": len(SHAPES), "colour": len(COLOURS), "size": len(SIZES)}


def object_labels(scenes, rows) -> list[tuple[int, object]]:
    return [(b, obj) for b, i in enumerate(rows) for obj in scenes[i].objects]


def crops(images: np.ndarray, scenes, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """Each object's grid cell cut out of its (N, S, S, 3) image: (M, 3, c, c) pixels, (M,) shape ids."""
    out, labels = [], []
    for b, obj in object_labels(scenes, rows):
        out.append(cell_pixels(images[rows[b]], obj.row, obj.col, scenes[rows[b]].grid))
        labels.append(SHAPES.index(obj.shape))
    return to_pixel_values(np.stack(out)), torch.tensor(labels)


def cnn(classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, classes))


class CropViT(torch.nn.Module):
    """The tower's ViT on a crop padded to a patch multiple: mean of its feature-layer tokens -> shape."""

    def __init__(self, visual, feature_layer: int):
        super().__init__()
        self.visual, self.feature_layer = visual, feature_layer
        self.head = torch.nn.Linear(visual.conv1.out_channels, len(SHAPES))

    def forward(self, x):
        pad = (-x.shape[-1]) % self.visual.patch_size[0]  # position embeddings interpolated to the crop's grid
        x = F.pad(x, (0, pad, 0, pad))
        return self.head(visual_forward(self.visual, x, self.feature_layer)[1].mean(1))


class CellHeads(torch.nn.Module):
    """Whole image -> the object's cell tokens (mean) -> one linear head per attribute."""

    def __init__(self, visual, feature_layer: int, heads: tuple[str, ...]):
        super().__init__()
        self.visual, self.feature_layer = visual, feature_layer
        width = visual.conv1.out_channels
        self.heads = torch.nn.ModuleDict({k: torch.nn.Linear(width, HEADS[k]) for k in heads})

    def forward(self, x, scenes, rows) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        tokens = visual_forward(self.visual, x, self.feature_layer)[1]
        items = object_labels(scenes, rows)
        cells = torch.stack([cell_mean(tokens, b, o.row, o.col, scenes[rows[b]].grid) for b, o in items])
        labels = {"shape": [SHAPES.index(o.shape) for _, o in items],
                  "colour": [list(COLOURS).index(o.colour) for _, o in items],
                  "size": [SIZES.index(o.size) for _, o in items]}
        return {k: (head(cells), torch.tensor(labels[k])) for k, head in self.heads.items()}


def build(setup: str, params: str):
    if setup == "cnn_crops":
        return cnn(len(SHAPES))
    cfg = load(params, vision={"stem": "conv" if "conv" in setup else "patch"})
    visual = create_clip(cfg).visual
    if setup == "vit_crops":
        return CropViT(visual, cfg.vision.feature_layer)
    heads = ("shape", "colour", "size") if setup.endswith("multi") else ("shape",)
    return CellHeads(visual, cfg.vision.feature_layer, heads)


def step_logits(model, setup: str, images, scenes, rows):
    """{head: (logits, labels)} for a batch of scene rows."""
    if setup.endswith("crops"):
        x, y = crops(images, scenes, rows)
        return {"shape": (model(x), y)}
    return model(to_pixel_values(images[rows]), scenes, rows)


def run_setup(setup: str, params: str, train, heldout, steps: int, seed: int, log_every: int = 50) -> dict:
    images, scenes = train
    torch.manual_seed(seed)
    model = build(setup, params)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    draw = np.random.default_rng(seed)
    curve, hits = [], []
    for step in tqdm(range(steps), desc=setup, mininterval=5):
        rows = np.sort(draw.choice(len(scenes), size=32, replace=False))
        out = step_logits(model, setup, images, scenes, rows)
        loss = sum(F.cross_entropy(logits, y) for logits, y in out.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        logits, y = out["shape"]
        hits.append(float((logits.argmax(1) == y).float().mean()))
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "train_acc": float(np.mean(hits[-log_every:]))})
    model.eval()
    with torch.no_grad():
        h_images, h_scenes = heldout
        rows = np.arange(len(h_scenes))
        parts = [step_logits(model, setup, h_images, h_scenes, r)["shape"] for r in np.array_split(rows, 8)]
        logits, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    stem = "none" if setup == "cnn_crops" else type(model.visual.conv1).__name__
    return {"curve": curve, "heldout_acc": float((logits.argmax(1) == y).float().mean()), "n_heldout": len(y),
            "stem": stem, "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--world", default=None, help="world folder (default: the scale's, under outputs/)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heldout", type=int, default=512, help="last training scenes held out (at most a quarter)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    cfg = load(args.params)
    world = WorldStore(args.world or artifact_dir(cfg, "world"))
    images, _, scenes = world_pairs(cfg, world)
    low = images[cfg.world.image_size_low]
    cut = len(scenes) - min(args.heldout, len(scenes) // 4)  # the last scenes are held out here
    train, heldout = (low[:cut], scenes[:cut]), (np.asarray(low[cut:]), scenes[cut:])
    results = {}
    for setup in args.setups:
        results[setup] = run_setup(setup, args.params, train, heldout, args.steps, args.seed, args.log_every)
        curve = " ".join(f"{c['train_acc']:.2f}" for c in results[setup]["curve"])
        print(f"{setup:22s} train acc every {args.log_every} steps: {curve}  held-out {results[setup]['heldout_acc']:.3f}",
              flush=True)
    counts = np.bincount([SHAPES.index(o.shape) for s in heldout[1] for o in s.objects])
    majority = float(counts.max() / counts.sum())
    print(f"held-out majority shape: {majority:.3f}")
    if args.out:
        write_json(resolve(args.out), {"params": args.params, "steps": args.steps, "size": cfg.world.image_size_low,
                                       "majority": majority, "results": results, "env": env_info()})


if __name__ == "__main__":
    main()
