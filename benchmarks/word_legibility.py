"""How legible, and how learnable, the world's words are at each resolution.

    .venv/bin/python benchmarks/word_legibility.py --params params/tiny.yaml [--world DIR] \
        [--steps 1000] [--threads 1] [--out FILE.json]

Side by side, per world resolution, on the training scenes that carry a word (the last quarter, at
most 512, held out): the nearest-template letter reader (:func:`lynxlib.world.read_word`, word
exactly right), the closed-set matcher (:func:`lynxlib.world.match_word` over the world's words) and
a 3-layer CNN trained from scratch on the word's grid cell (``--steps`` steps of 64 crops, Adam 5e-4).
The readers say whether the strokes survive; the CNN says whether a learner can still tell the words
apart from what is left (the question the OCR category and the resolution ablation depend on).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lynxlib.backbones.cells import cell_pixels  # noqa: E402
from lynxlib.backbones.tower import world_pairs  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.runs import env_info, resolve, set_threads, write_json  # noqa: E402
from lynxlib.stages import artifact_dir  # noqa: E402
from lynxlib.vision import to_pixel_values  # noqa: E402
from lynxlib.world import WorldStore, match_word, read_word, text_box  # noqa: E402


def cell_crops(images: np.ndarray, scenes) -> torch.Tensor:
    """Each scene's word cell: (N, 3, c, c) CLIP-normalised pixels."""
    crops = [cell_pixels(images[i], s.text.row, s.text.col, s.grid) for i, s in enumerate(scenes)]
    return to_pixel_values(np.stack(crops))


def word_cnn(classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.LazyLinear(classes))


def cnn_accuracy(train_x, train_y, test_x, test_y, classes: int, steps: int, seed: int, desc: str) -> float:
    torch.manual_seed(seed)
    net = word_cnn(classes)
    net(train_x[:2])  # materialise the lazy layer before the optimiser sees it
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    draw = np.random.default_rng(seed)
    for _ in tqdm(range(steps), desc=desc, mininterval=5):
        idx = torch.from_numpy(draw.choice(len(train_y), size=min(64, len(train_y)), replace=False))
        loss = F.cross_entropy(net(train_x[idx]), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((net(test_x).argmax(1) == test_y).float().mean())


def measure(images: np.ndarray, scenes, words: tuple[str, ...], cut: int, steps: int, seed: int, size: int) -> dict:
    test = range(cut, len(scenes))
    read = np.mean([read_word(np.asarray(images[i]), text_box(scenes[i]), len(scenes[i].text.word))
                    == scenes[i].text.word for i in test])
    matched = np.mean([match_word(np.asarray(images[i]), text_box(scenes[i]), words) == scenes[i].text.word
                       for i in test])
    x = cell_crops(images, scenes)
    y = torch.tensor([words.index(s.text.word) for s in scenes])
    cnn = cnn_accuracy(x[:cut], y[:cut], x[cut:], y[cut:], len(words), steps, seed, f"CNN @{size}px")
    return {"letter_reader": float(read), "closed_set_match": float(matched), "cnn": cnn}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--world", default=None, help="world folder (default: the scale's, under outputs/)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    cfg = load(args.params)
    world = WorldStore(args.world or artifact_dir(cfg, "world"))
    images, _, scenes = world_pairs(cfg, world)
    rows = [i for i, s in enumerate(scenes) if s.text is not None]
    scenes = [scenes[i] for i in rows]
    words = tuple(sorted({s.text.word for s in scenes}))
    cut = len(scenes) - min(512, len(scenes) // 4)
    results = {}
    for size, arr in sorted(images.items()):
        results[str(size)] = measure(np.asarray(arr[rows]), scenes, words, cut, args.steps, args.seed, size)
        r = results[str(size)]
        print(f"{size:4d} px  letter reader {r['letter_reader']:.3f}  closed-set match {r['closed_set_match']:.3f}  "
              f"CNN {r['cnn']:.3f}", flush=True)
    counts = np.bincount([words.index(s.text.word) for s in scenes[cut:]], minlength=len(words))
    majority = float(counts.max() / counts.sum())
    print(f"{len(words)} words, {len(scenes) - cut} held-out scenes; chance {1 / len(words):.3f}, majority {majority:.3f}")
    if args.out:
        write_json(resolve(args.out), {"params": args.params, "steps": args.steps, "words": list(words),
                                       "n_train": cut, "n_heldout": len(scenes) - cut, "majority": majority,
                                       "results": results, "env": env_info()})


if __name__ == "__main__":
    main()
