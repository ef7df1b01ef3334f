"""Batch sources over user files (the ``paper`` scale): image-text pairs in tar shards (stage 1).

A batch source (``lynxlib.train.BatchSource``) returns the batch of ``(step, micro, rank, world_size)``
as a pure function of its arguments, so a resumed run sees exactly the data an uninterrupted one would.
Samples are visited in a seeded permutation per epoch; sample slot

    s = (step * grad_accum + micro) * batch_size + i          (i < batch_size)

of a rank takes item ``perm_epoch[s mod n]``, epoch ``s // n``: no sample repeats within an epoch.
:class:`ShardPairs` splits the *shards* between ranks (shard j goes to rank ``j mod world_size``), so a
rank indexes and reads only its own files; the LLaVA source (:mod:`lynxlib.llava_data`) shares one
permutation between ranks instead.

Random access needs each shard's member offsets: :func:`index_shard` reads the tar headers only (no
image data), once per shard, on the first batch a rank asks for. The index costs about 100 bytes per
pair in memory (15 M pairs per rank: ~1.5 GB).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from lynxlib.data import PromptFormatter, pad_batch
from lynxlib.images import resize_center_crop
from lynxlib.shards import (COMPRESSED, Pair, ShardError, ShardStats, check_on_error, expand_paths, make_pair,
                            open_shard, scan_shard)
from lynxlib.vision import to_pixel_values

Turns = Sequence[tuple[str, str]]


# --------------------------------------------------------------------------- shared pieces
def epoch_permutation(n: int, *, seed: int, epoch: int, stream: int = 0) -> np.ndarray:
    """A seeded permutation of ``range(n)`` for one epoch (``stream``: e.g. the rank)."""
    return np.random.default_rng([seed, stream, epoch]).permutation(n)


class SlotOrder:
    """slot -> item index through per-epoch permutations (the last epoch's permutation is cached)."""

    def __init__(self, n: int, *, seed: int, stream: int = 0):
        if n <= 0:
            raise ValueError("no samples to draw from")
        self.n, self.seed, self.stream = n, seed, stream
        self._cached: tuple[int, np.ndarray] | None = None

    def __call__(self, slot: int, *, shift: int = 0) -> int:
        """The item of ``slot``; ``shift`` k: the item k places further on in the same epoch (cyclic)."""
        epoch, pos = divmod(slot, self.n)
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, epoch_permutation(self.n, seed=self.seed, epoch=epoch, stream=self.stream))
        return int(self._cached[1][(pos + shift) % self.n])


def collate(*, formatter: PromptFormatter, samples: Sequence[tuple[Turns, np.ndarray | None]],
            size: int) -> dict[str, torch.Tensor]:
    """[(turns, uint8 image (H, W, 3) or None)] -> a LynxModel batch:

    ``input_ids``/``labels``/``attention_mask`` (B, T) right-padded, ``has_visual`` (B,) bool and, when any
    sample has an image, ``pixel_values`` (n_visual, 3, size, size) (CLIP-normalised, one row per visual
    sample in batch order, each image resized on its shorter side and centre-cropped)."""
    rows = [formatter.encode(list(turns), has_visual=image is not None) for turns, image in samples]
    batch = pad_batch(rows, pad_id=formatter.tok.pad_token_id, side="right")
    batch["has_visual"] = torch.tensor([image is not None for _, image in samples])
    images = [resize_center_crop(image, size) for _, image in samples if image is not None]
    if images:
        batch["pixel_values"] = to_pixel_values(np.stack(images))
    return batch


# --------------------------------------------------------------------------- shard index
@dataclass
class ShardIndex:
    """Where each sample of one uncompressed shard lies. ``spans`` (n, 6) int64: image offset, size,
    caption offset, size, json offset (-1: none), size."""

    shard: str
    keys: list[str]
    members: list[tuple[str, str]]  # (image member name, caption member name), for error messages
    spans: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def index_shard(shard: str, *, on_error: str = "raise", stats: ShardStats | None = None) -> ShardIndex:
    """Scan one shard's headers (no data read): its well-formed samples and their member offsets."""
    if shard.endswith(COMPRESSED):
        raise ValueError(f"{shard}: random access needs an uncompressed tar (img2dataset writes plain .tar)")
    keys, names, spans = [], [], []
    with open_shard(shard) as tf:
        for m in scan_shard(tf, shard=shard, on_error=on_error, stats=stats):
            keys.append(m.key)
            names.append((m.image.name, m.caption.name))
            spans.append([m.image.offset_data, m.image.size, m.caption.offset_data, m.caption.size,
                          m.meta.offset_data if m.meta else -1, m.meta.size if m.meta else 0])
    return ShardIndex(shard, keys, names, np.asarray(spans, dtype=np.int64).reshape(-1, 6))


def read_sample(index: ShardIndex, i: int, *, decode: bool = True) -> Pair:
    """Sample ``i`` of an indexed shard, read by offset (ShardError on bad contents)."""
    span = [int(v) for v in index.spans[i]]
    raw: list[bytes | None] = []
    with open(index.shard, "rb") as handle:
        for off, size in zip(span[0::2], span[1::2]):
            if off < 0:
                raw.append(None)
                continue
            handle.seek(off)
            raw.append(handle.read(size))
            if len(raw[-1]) != size:
                raise ShardError(index.shard, f"key {index.keys[i]!r}", "truncated", "shard changed since indexing")
    return make_pair(shard=index.shard, key=index.keys[i], raw=raw, names=index.members[i], decode=decode)


# --------------------------------------------------------------------------- stage-1 source
class ShardPairs:
    """Stage-1 batches from image-text pairs in tar shards: each pair becomes (empty instruction,
    caption as the response) with its image at ``resolution`` (see :func:`collate` for the keys).

    ``on_error="skip"``: samples that fail to index or decode are skipped (counted in ``stats``);
    a slot whose sample is bad takes the next readable sample of the same epoch's order instead.
    """

    def __init__(self, *, paths: str | Sequence[str], formatter: PromptFormatter, resolution: int,
                 batch_size: int, seed: int = 0, grad_accum: int = 1, on_error: str = "raise"):
        check_on_error(on_error)
        self.paths = expand_paths(paths)
        if not self.paths:
            raise ValueError("ShardPairs needs at least one shard path (data.pair_shards is empty)")
        self.formatter, self.resolution, self.batch_size = formatter, resolution, batch_size
        self.seed, self.grad_accum, self.on_error = seed, grad_accum, on_error
        self.stats = ShardStats()
        self._ranks: dict[tuple[int, int], tuple[list[ShardIndex], np.ndarray, SlotOrder]] = {}

    @classmethod
    def from_config(cls, cfg, stage: str, *, formatter: PromptFormatter, **kwargs) -> "ShardPairs":
        """``data.pair_shards`` (plus ``data.noisy_pair_shards`` when the stage's captions are
        ``clean+noisy``) at the stage's resolution, batch size and accumulation."""
        stage_cfg = getattr(cfg, stage)
        paths = list(cfg.data.pair_shards) + (list(cfg.data.noisy_pair_shards)
                                              if stage_cfg.captions == "clean+noisy" else [])
        size = cfg.world.image_size_high if stage_cfg.resolution == "high" else cfg.world.image_size_low
        return cls(paths=paths, formatter=formatter, resolution=size, batch_size=stage_cfg.batch_size,
                   seed=cfg.seed, grad_accum=stage_cfg.grad_accum, **kwargs)

    def rank_shards(self, rank: int, world_size: int) -> list[str]:
        """The shards rank ``rank`` of ``world_size`` reads: every ``world_size``-th, from ``rank``."""
        if world_size > len(self.paths):
            raise ValueError(f"{len(self.paths)} shards cannot be split over {world_size} ranks: "
                             "give at least one shard per rank (img2dataset: more, smaller shards)")
        return self.paths[rank::world_size]

    def _rank(self, rank: int, world_size: int):
        if (rank, world_size) not in self._ranks:
            indexes = [index_shard(s, on_error=self.on_error, stats=self.stats)
                       for s in self.rank_shards(rank, world_size)]
            starts = np.cumsum([0] + [len(ix) for ix in indexes])
            if starts[-1] == 0:
                raise ShardError(self.paths[rank], "(all shards of this rank)", "missing_image", "no readable samples")
            order = SlotOrder(int(starts[-1]), seed=self.seed, stream=rank)
            self._ranks[(rank, world_size)] = (indexes, starts, order)
        return self._ranks[(rank, world_size)]

    def _read(self, rank: int, world_size: int, slot: int) -> Pair:
        indexes, starts, order = self._rank(rank, world_size)
        for shift in range(order.n):
            item = order(slot, shift=shift)
            shard = int(np.searchsorted(starts, item, side="right")) - 1
            try:
                return read_sample(indexes[shard], item - int(starts[shard]))
            except ShardError as err:
                if self.on_error == "raise":
                    raise
                self.stats.record(err)
        raise ShardError(self.paths[rank], "(all samples of this rank)", "bad_image", "no sample could be read")

    def pairs(self, step: int, micro: int, rank: int, world_size: int) -> list[Pair]:
        """The decoded pairs of one micro-batch, in batch order."""
        first = (step * self.grad_accum + micro) * self.batch_size
        return [self._read(rank, world_size, first + i) for i in range(self.batch_size)]

    def keys(self, step: int, micro: int, rank: int, world_size: int) -> list[str]:
        return [p.key for p in self.pairs(step, micro, rank, world_size)]

    def batch(self, step: int, micro: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        pairs = self.pairs(step, micro, rank, world_size)
        samples = [([("", p.caption)], p.image) for p in pairs]
        return collate(formatter=self.formatter, samples=samples, size=self.resolution)
