"""A tar shard's samples from its headers alone: members grouped by key, checked, with their offsets.

The layer under :mod:`lynxlib.shards`, which re-exports these names. :func:`open_shard` opens a shard;
:func:`scan_shard` yields one :class:`Members` per well-formed sample without reading any data (random
access: :class:`lynxlib.pair_data.ShardPairs`). Malformed input raises :class:`ShardError`; with
``on_error="skip"`` it is counted in a :class:`ShardStats` instead.
"""
from __future__ import annotations

import logging
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

# The logger keeps the name it had before this module was split out of lynxlib.shards.
log = logging.getLogger("lynxlib.shards")
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
COMPRESSED = (".gz", ".tgz", ".bz2", ".xz")


class ShardError(ValueError):
    """A malformed shard or sample. ``reason`` is a short category: missing_caption, missing_image,
    bad_image, bad_caption, bad_json, duplicate, split_key, truncated."""

    def __init__(self, shard: str, where: str, reason: str, detail: str):
        self.shard, self.where, self.reason = str(shard), where, reason
        super().__init__(f"{shard}: {where}: {detail} [{reason}]")


@dataclass
class ShardStats:
    """What a pass over shards read and skipped (``on_error="skip"``)."""

    pairs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count (truncated: shards)
    examples: list[str] = field(default_factory=list)       # the first few error messages

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def record(self, err: ShardError) -> None:
        self.skipped[err.reason] = self.skipped.get(err.reason, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(str(err))
        log.warning("skipped: %s", err)


def _handle(err: ShardError, on_error: str, stats: ShardStats | None) -> None:
    if on_error == "raise":
        raise err
    if stats is not None:
        stats.record(err)


# ------------------------------------------------------------------------------- scanning
def _split_name(name: str) -> tuple[str, str] | None:
    """``dir/000123.jpg`` -> (``dir/000123``, ``jpg``); None for names without a key or extension."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or not stem:
        return None
    return (f"{head}/{stem}" if head else stem), ext.lower()


def open_shard(shard: str) -> tarfile.TarFile:
    """The shard as a ``TarFile`` (plain or compressed); ShardError if it is not a tar."""
    if not Path(shard).is_file():
        raise FileNotFoundError(f"shard {shard} not found")
    try:
        return tarfile.open(shard, mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ShardError(shard, "(archive)", "truncated", f"not a readable tar: {err}") from err


def _check_end(tf: tarfile.TarFile, shard: str, last: str) -> None:
    """An uncompressed tar ends with zero blocks; a file cut at a member boundary does not."""
    if shard.endswith(COMPRESSED):
        return
    with open(shard, "rb") as handle:
        handle.seek(tf.offset)
        end = handle.read(512)
    if len(end) < 512 or any(end):
        raise ShardError(shard, f"after member {last!r}", "truncated",
                         "the tar ends without its end-of-archive blocks (truncated copy?)")


def _groups(tf: tarfile.TarFile, shard: str, size: float) -> Iterator[tuple[str, dict[str, tarfile.TarInfo]]]:
    """(key, {ext: member}) per sample, in tar order. Raises ShardError for split or duplicate keys
    and for a truncated tar (after the last whole sample)."""
    seen: set[str] = set()
    key, members, last = None, {}, "(start)"
    try:
        for info in tf:
            split = _split_name(info.name) if info.isfile() else None
            if split is None:
                continue
            if split[0] != key:  # the previous sample is complete
                if key is not None:
                    yield key, members
                key, members = split[0], {}
                if key in seen:
                    raise ShardError(shard, f"key {key!r}", "split_key", "its files are not consecutive in the tar")
                seen.add(key)
            if info.offset_data + info.size > size:
                raise tarfile.ReadError(f"member {info.name!r} runs past the end of the file ({size} bytes)")
            if split[1] in members:
                raise ShardError(shard, f"member {info.name!r}", "duplicate", "appears twice")
            members[split[1]] = info
            last = info.name
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ShardError(shard, f"after member {last!r}", "truncated", f"truncated or corrupt tar: {err}") from err
    try:
        _check_end(tf, shard, last)
    except ShardError:  # cut at a member boundary: keep the last sample if it looks whole
        if key is not None and "txt" in members and any(e in members for e in IMAGE_EXTS):
            yield key, members
        raise
    if key is not None:
        yield key, members


def _sample_members(shard: str, key: str, members: dict[str, tarfile.TarInfo]) -> "Members":
    images = [members[e] for e in IMAGE_EXTS if e in members]
    if not images:
        raise ShardError(shard, f"key {key!r}", "missing_image",
                         f"no image member (.{'/.'.join(IMAGE_EXTS)}); has {sorted(members)}")
    if len(images) > 1:
        raise ShardError(shard, f"key {key!r}", "duplicate", f"several images: {[m.name for m in images]}")
    if "txt" not in members:
        raise ShardError(shard, f"key {key!r}", "missing_caption", f"no caption member {key}.txt")
    return Members(key, images[0], members["txt"], members.get("json"))


@dataclass(frozen=True)
class Members:
    """One sample's tar members (offsets in ``.offset_data``, sizes in ``.size``)."""

    key: str
    image: tarfile.TarInfo
    caption: tarfile.TarInfo
    meta: tarfile.TarInfo | None


def scan_shard(tf: tarfile.TarFile, *, shard: str, on_error: str = "raise",
               stats: ShardStats | None = None) -> Iterator[Members]:
    """The well-formed samples of an open shard, in tar order, from headers only. Bad samples raise or
    are skipped (``on_error``); a truncated tar or a split key ends the shard after raising/counting."""
    size = float("inf") if shard.endswith(COMPRESSED) else os.path.getsize(shard)
    try:
        for key, members in _groups(tf, shard, size):
            try:
                yield _sample_members(shard, key, members)
            except ShardError as err:
                _handle(err, on_error, stats)
    except ShardError as err:
        _handle(err, on_error, stats)
