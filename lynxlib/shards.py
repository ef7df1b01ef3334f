"""Image-text pairs in WebDataset tar shards: what img2dataset writes for CC3M/CC12M/SBU/LAION/COYO.

A shard is a tar whose members are grouped into samples by *key*: the member's path up to the first
dot of its file name (WebDataset's rule), so ``000001.jpg``, ``000001.txt`` and ``000001.json`` are
one sample. A sample needs exactly one image (``.jpg``/``.jpeg``/``.png``/``.webp``) and a caption
(``.txt``, UTF-8); ``.json`` metadata is optional; other members are ignored. A sample's files must be
consecutive in the tar, as every writer puts them.

* :func:`iter_shard_pairs`: stream :class:`Pair` s in a deterministic order (paths in order after
  brace expansion, members in tar order), images decoded to uint8 RGB (alpha composited on white, as
  img2dataset does) or left as bytes.
* :func:`write_shard`: write pairs (atomic), for tests and for converting data.
* :func:`scan_shard`: a sample's members and their offsets from the headers alone (random access:
  :class:`lynxlib.pair_data.ShardPairs`); it, :func:`open_shard`, :class:`ShardError` and
  :class:`ShardStats` live in :mod:`lynxlib.shard_scan` and are importable from here.
* :func:`resize_center_crop`: the paper's preprocessing, shorter side to ``size`` then a centre crop.

Malformed input raises :class:`ShardError` naming the shard, the member or key, and what is wrong.
With ``on_error="skip"`` bad samples (and the rest of a truncated shard) are skipped and counted in a
:class:`ShardStats`.
"""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from lynxlib.images import ImageDecodeError, decode_image, encode_image, resize_center_crop, sniff_format
from lynxlib.runs import atomic_path
from lynxlib.shard_scan import (COMPRESSED, IMAGE_EXTS, Members, ShardError, ShardStats, _handle, open_shard,
                                scan_shard)

ON_ERROR = ("raise", "skip")
_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


@dataclass(frozen=True)
class Pair:
    """One image-text pair. ``image``: uint8 (H, W, 3) RGB, or the encoded bytes when not decoded."""

    key: str
    image: np.ndarray | bytes
    caption: str
    meta: dict = field(default_factory=dict)  # the sample's .json (img2dataset: url, width, height, ...)
    shard: str = ""                           # where it was read from ("" for pairs made in memory)


# ------------------------------------------------------------------------------- paths
def expand_braces(pattern: str) -> list[str]:
    """Shell-style braces as WebDataset's ``braceexpand``: ``{00000..00009}`` (zero-padded to the
    longer bound), ``{a,b}``; several groups multiply out, left to right."""
    match = _BRACE.search(pattern)
    if match is None:
        if "{" in pattern or "}" in pattern:
            raise ValueError(f"unbalanced braces in shard path {pattern!r}")
        return [pattern]
    body, head, tail = match.group(1), pattern[: match.start()], pattern[match.end():]
    rng = _RANGE.match(body)
    if rng:
        lo, hi = rng.groups()
        width = max(len(lo.lstrip("-")), len(hi.lstrip("-"))) if (lo.startswith("0") or hi.startswith("0")) else 0
        step = 1 if int(hi) >= int(lo) else -1
        options = [str(i).zfill(width) for i in range(int(lo), int(hi) + step, step)]
    elif "," in body:
        options = body.split(",")
    else:  # "{a}" stays literal, as in braceexpand
        return [head + match.group(0) + rest for rest in expand_braces(tail)]
    return [head + opt + rest for opt in options for rest in expand_braces(tail)]


def expand_paths(paths: str | Sequence[str]) -> list[str]:
    """A path or list of paths, each brace-expanded, in order."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return [p for path in paths for p in expand_braces(str(path))]


# ------------------------------------------------------------------------------- contents
def parse_caption(data: bytes, *, where: str, shard: str) -> str:
    try:
        caption = data.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise ShardError(shard, where, "bad_caption", f"caption is not UTF-8: {err}") from err
    if not caption:
        raise ShardError(shard, where, "bad_caption", "empty caption")
    return caption


def parse_meta(data: bytes | None, *, where: str, shard: str) -> dict:
    if data is None:
        return {}
    try:
        meta = json.loads(data)
    except ValueError as err:
        raise ShardError(shard, where, "bad_json", f"metadata is not JSON: {err}") from err
    if not isinstance(meta, dict):
        raise ShardError(shard, where, "bad_json", f"metadata is a {type(meta).__name__}, not an object")
    return meta


def make_pair(*, shard: str, key: str, raw: Sequence[bytes | None], names: tuple[str, str],
              decode: bool) -> Pair:
    """A :class:`Pair` from one sample's member bytes ``raw`` = [image, caption, json or None];
    ``names`` = (image member, caption member), named in a ShardError when their contents are bad."""
    text = parse_caption(raw[1], where=f"member {names[1]!r}", shard=shard)
    info = parse_meta(raw[2], where=f"member {key}.json", shard=shard)
    try:
        pixels = decode_image(raw[0]) if decode else raw[0]
    except ImageDecodeError as err:
        raise ShardError(shard, f"member {names[0]!r}", "bad_image", str(err)) from err
    return Pair(key=key, image=pixels, caption=text, meta=info, shard=shard)


# ------------------------------------------------------------------------------- reading
def _shard_pairs(shard: str, *, decode: bool, on_error: str, stats: ShardStats | None) -> Iterator[Pair]:
    try:
        tf = open_shard(shard)
    except ShardError as err:
        _handle(err, on_error, stats)
        return
    with tf:
        for members in scan_shard(tf, shard=shard, on_error=on_error, stats=stats):
            try:
                raw = [tf.extractfile(m).read() if m is not None else None
                       for m in (members.image, members.caption, members.meta)]
            except (tarfile.TarError, EOFError) as err:  # a member's data cut short
                _handle(ShardError(shard, f"key {members.key!r}", "truncated", f"truncated tar: {err}"),
                        on_error, stats)
                return
            try:
                pair = make_pair(shard=shard, key=members.key, raw=raw, decode=decode,
                                 names=(members.image.name, members.caption.name))
            except ShardError as err:
                _handle(err, on_error, stats)
                continue
            if stats is not None:
                stats.pairs += 1
            yield pair


def iter_shard_pairs(paths: str | Sequence[str], *, decode: bool = True, on_error: str = "raise",
                     stats: ShardStats | None = None) -> Iterator[Pair]:
    """Stream the pairs of every shard, in order. ``paths`` may hold brace ranges
    (``shards/{00000..00009}.tar``). ``on_error="skip"`` skips bad samples (and the rest of a truncated
    shard), counting them in ``stats``; ``"raise"`` raises :class:`ShardError` at the first one."""
    check_on_error(on_error)
    for shard in expand_paths(paths):
        yield from _shard_pairs(shard, decode=decode, on_error=on_error, stats=stats)


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


# ------------------------------------------------------------------------------- writing
def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o444  # reproducible bytes
    tar.addfile(info, io.BytesIO(data))


def _check_pair(pair: Pair, seen: set[str], path: str) -> None:
    base = pair.key.rpartition("/")[2]
    if not base or "." in base or pair.key.startswith("/"):
        raise ShardError(path, f"key {pair.key!r}", "bad_key", "keys are relative, non-empty and hold no '.'")
    if pair.key in seen:
        raise ShardError(path, f"key {pair.key!r}", "duplicate", "written twice")
    if not pair.caption.strip():
        raise ShardError(path, f"key {pair.key!r}", "bad_caption", "empty caption")
    seen.add(pair.key)


def write_shard(path: str | Path, pairs: Iterable[Pair], *, image_format: str = "png", quality: int = 95) -> int:
    """Write ``pairs`` to one tar shard, atomically: ``{key}.{png|jpg|webp}``, ``{key}.txt`` (UTF-8) and,
    when ``meta`` is not empty, ``{key}.json``. Decoded images are encoded as ``image_format`` (png is
    lossless: reading gives the same pixels); bytes are stored as given, named by their format.
    Returns the number of pairs written."""
    seen: set[str] = set()
    path = str(path)
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for pair in pairs:
            _check_pair(pair, seen, path)
            if isinstance(pair.image, (bytes, bytearray)):
                data, ext = bytes(pair.image), sniff_format(bytes(pair.image))
                if ext is None:
                    raise ShardError(path, f"key {pair.key!r}", "bad_image", "image bytes are not JPEG, PNG or WebP")
            else:
                data = encode_image(pair.image, fmt=image_format, quality=quality)
                ext = "jpg" if image_format == "jpeg" else image_format
            _add(tar, f"{pair.key}.{ext}", data)
            _add(tar, f"{pair.key}.txt", pair.caption.encode("utf-8"))
            if pair.meta:
                _add(tar, f"{pair.key}.json", json.dumps(pair.meta, sort_keys=True).encode("utf-8"))
    return len(seen)


__all__ = ["COMPRESSED", "IMAGE_EXTS", "Members", "Pair", "ShardError", "ShardStats", "decode_image",
           "expand_braces", "expand_paths", "iter_shard_pairs", "make_pair", "open_shard", "resize_center_crop",
           "scan_shard", "write_shard"]
