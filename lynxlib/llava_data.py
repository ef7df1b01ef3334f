"""LLaVA-style instruction data (stage 2 at the ``paper`` scale): records, turns, a batch source.

A file is a JSON list of records (read and validated by :func:`lynxlib.formats.read_llava`)::

    {"id": "000000033471", "image": "coco/train2017/000000033471.jpg",
     "conversations": [{"from": "human", "value": "<image>\\nWhat colour is the bus?"},
                       {"from": "gpt", "value": "The bus is white and red."}, ...]}

``image`` is relative to ``data.image_root`` (or absolute); a record without it is text-only. Turns
alternate human -> gpt. The ``<image>`` marker is removed from the text: the prompt formatter puts
the image (Q placeholders after BOS) itself. Image errors name the file and the record id.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lynxlib.data import PromptFormatter
from lynxlib.formats import llava_turns, read_llava
from lynxlib.images import ImageDecodeError, decode_image
from lynxlib.pair_data import SlotOrder, collate


class LlavaError(ValueError):
    """A missing or unreadable image, or a relative path without an image root: names the file and record id."""


@dataclass(frozen=True)
class LlavaRecord:
    source: str                    # the JSON file it came from
    id: str
    image: str | None              # path as written in the record (None: text-only)
    turns: tuple[tuple[str, str], ...]  # (instruction, response), <image> markers removed


def read_llava_records(path: str | Path) -> list[LlavaRecord]:
    """One LLaVA-style JSON file as :class:`LlavaRecord` s (parsed and validated by
    :func:`lynxlib.formats.read_llava`: a malformed file raises ``FormatError`` naming file and line)."""
    return [LlavaRecord(str(path), str(r["id"]), r.get("image"), llava_turns(r)) for r in read_llava(path)]


class LlavaInstructions:
    """Stage-2 batches from LLaVA-style files (see :func:`lynxlib.pair_data.collate` for the keys).

    All ranks share one seeded permutation per epoch; slot
    ``((step * grad_accum + micro) * world_size + rank) * batch_size + i`` takes its item, so ranks see
    disjoint records. ``check_images`` stats every image path up front and fails naming the first ones
    missing (file, record id, resolved path).
    """

    def __init__(self, *, json_paths: str | Sequence[str], image_root: str | Path | None,
                 formatter: PromptFormatter, resolution: int, batch_size: int, seed: int = 0,
                 grad_accum: int = 1, check_images: bool = True):
        json_paths = [json_paths] if isinstance(json_paths, (str, Path)) else list(json_paths)
        self.records = [r for p in json_paths for r in read_llava_records(p)]
        self.image_root = Path(image_root) if image_root is not None else None
        self.formatter, self.resolution, self.batch_size = formatter, resolution, batch_size
        self.grad_accum = grad_accum
        self.order = SlotOrder(len(self.records), seed=seed)
        if check_images:
            self.check_images()

    @classmethod
    def from_config(cls, cfg, stage: str = "instruct", *, formatter: PromptFormatter, **kwargs) -> "LlavaInstructions":
        """``data.instruct_json`` under ``data.image_root`` at the stage's resolution and batch size."""
        stage_cfg = getattr(cfg, stage)
        size = cfg.world.image_size_high if stage_cfg.resolution == "high" else cfg.world.image_size_low
        return cls(json_paths=cfg.data.instruct_json, image_root=cfg.data.image_root, formatter=formatter,
                   resolution=size, batch_size=stage_cfg.batch_size, seed=cfg.seed,
                   grad_accum=stage_cfg.grad_accum, **kwargs)

    def image_path(self, record: LlavaRecord) -> Path:
        path = Path(record.image)
        if path.is_absolute():
            return path
        if self.image_root is None:
            raise LlavaError(f"{record.source}: record id={record.id}: image {record.image!r} is relative "
                             "but no image root was given (data.image_root)")
        return self.image_root / path

    def check_images(self) -> None:
        missing = [r for r in self.records if r.image is not None and not self.image_path(r).is_file()]
        if missing:
            shown = "; ".join(f"{r.source}: record id={r.id}: {self.image_path(r)}" for r in missing[:3])
            raise LlavaError(f"{len(missing)} image(s) not found: {shown}" + (" ..." if len(missing) > 3 else ""))

    def load_image(self, record: LlavaRecord) -> np.ndarray:
        """uint8 (H, W, 3) RGB of a record's image."""
        path = self.image_path(record)
        try:
            return decode_image(path.read_bytes())
        except FileNotFoundError as err:
            raise LlavaError(f"{record.source}: record id={record.id}: image not found: {path}") from err
        except ImageDecodeError as err:
            raise LlavaError(f"{record.source}: record id={record.id}: {path}: {err}") from err

    def indices(self, step: int, micro: int, rank: int, world_size: int) -> list[int]:
        first = ((step * self.grad_accum + micro) * world_size + rank) * self.batch_size
        return [self.order(first + i) for i in range(self.batch_size)]

    def ids(self, step: int, micro: int, rank: int, world_size: int) -> list[str]:
        return [self.records[i].id for i in self.indices(step, micro, rank, world_size)]

    def batch(self, step: int, micro: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        records = [self.records[i] for i in self.indices(step, micro, rank, world_size)]
        samples = [(r.turns, self.load_image(r) if r.image is not None else None) for r in records]
        return collate(formatter=self.formatter, samples=samples, size=self.resolution)
