"""What reaches the LM: per-cell probes on the resampler's latents beside the tower's tokens.

    .venv/bin/python benchmarks/bridge_probe.py --params params/tiny.yaml --variant ours \
        [--after pretrain_low,pretrain_high] [--set model.resampler.locality=2] [--scenes 1500] \
        [--threads 2] [--out FILE.json]

Builds the variant's model with the weights of the finished stages ``--after`` (none: the resampler
as initialised), encodes held-out scenes (a seed stream the world's splits never use) at the high
resolution and prints :func:`lynxlib.evaluate.bridge.cell_probe_table` (occupied / shape / colour per
grid cell from the tower's cell tokens, the latents, and pooled tokens) and the resampler's attention
entropy per layer.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from lynxlib import pipeline as P  # noqa: E402
from lynxlib.backbones.heldout import heldout_scenes  # noqa: E402
from lynxlib.config import dotted_overrides, load  # noqa: E402
from lynxlib.evaluate.bridge import attention_summary, cell_probe_table  # noqa: E402
from lynxlib.features import encode_array  # noqa: E402
from lynxlib.runs import env_info, set_threads, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--variant", default="ours")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--after", default="", help="finished stages whose weights to load, oldest first")
    ap.add_argument("--set", action="append", default=[], help="override, e.g. model.resampler.locality=2")
    ap.add_argument("--scenes", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)

    import torch

    cfg = load(args.params, args.variant, **dotted_overrides(args.set))
    if cfg.model.blind:
        raise SystemExit(f"variant {args.variant!r} is blind: it has no resampler to probe")
    backbones = P.load_backbones(cfg, args.out_root)
    model = P.build_run_model(cfg, backbones, after=[s for s in args.after.split(",") if s],
                              out_root=args.out_root).eval()
    scenes, images, _ = heldout_scenes(cfg, args.scenes)
    size = cfg.world.image_size_high
    model.set_resolution(size)
    tokens = torch.from_numpy(encode_array(model.tower, images[size][:, None], desc="tower")).float()  # (N, 1, T, Dv)
    media = model.frame_pos(tokens)
    with torch.no_grad():
        latents = model.resampler(media)
    probes = cell_probe_table(tokens[:, 0, 1:], latents, scenes)
    attention = attention_summary(model.resampler, media)
    print(f"held-out scenes {len(scenes)} at {size}px, after [{args.after}], "
          f"locality {cfg.model.resampler.locality}")
    print(probes.pivot(index="attribute", columns="readout", values="acc").round(3).to_string())
    print("majority:", probes.groupby("attribute")["majority"].first().round(3).to_dict())
    print(attention.round(3).to_string(index=False))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "size": size, "scenes": len(scenes),
                              "locality": cfg.model.resampler.locality, "probes": probes.to_dict("records"),
                              "attention": attention.to_dict("records")})


if __name__ == "__main__":
    main()
