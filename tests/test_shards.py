"""WebDataset tar shards of image-text pairs: writer and reader round trips on real images, and
malformed shards built member by member with ``tarfile`` (helpers: tests/shard_kit.py; the batch
sources over shards and LLaVA JSON: tests/test_batch_sources.py)."""
import io
import json
import tarfile

import numpy as np
import pytest
from shard_kit import CAPTIONS, SAMPLES, load_real_images, raw_tar, real_pairs, sample_bytes

from lynxlib.images import encode_image, resize_center_crop
from lynxlib.shards import Pair, ShardError, ShardStats, expand_braces, iter_shard_pairs, write_shard


@pytest.fixture(scope="module")
def real_images() -> dict[str, np.ndarray]:
    return load_real_images()


# ------------------------------------------------------------------------------- round trips
def test_png_round_trip_is_exact(tmp_path, real_images):
    pairs = real_pairs(real_images)
    assert write_shard(tmp_path / "s.tar", pairs) == 3
    got = list(iter_shard_pairs([str(tmp_path / "s.tar")]))
    assert [p.key for p in got] == [p.key for p in pairs]
    for want, have in zip(pairs, got):
        assert have.caption == want.caption and have.meta == want.meta and have.shard == str(tmp_path / "s.tar")
        assert have.image.dtype == np.uint8 and have.image.shape == want.image.shape
        assert np.array_equal(have.image, want.image)
    assert real_images["grace_hopper.jpg"].shape == (600, 512, 3)


def test_encoded_bytes_are_stored_as_given(tmp_path, real_images):
    pairs = [Pair(key=f"{i}", image=sample_bytes(n), caption=c) for i, (n, c) in enumerate(zip(SAMPLES, CAPTIONS))]
    write_shard(tmp_path / "raw.tar", pairs)
    with tarfile.open(tmp_path / "raw.tar") as tar:
        assert tar.getnames() == ["0.jpg", "0.txt", "1.png", "1.txt", "2.png", "2.txt"]  # no meta: no .json
    raw = list(iter_shard_pairs(str(tmp_path / "raw.tar"), decode=False))
    assert [p.image for p in raw] == [p.image for p in pairs]
    decoded = list(iter_shard_pairs(str(tmp_path / "raw.tar")))
    for pair, name in zip(decoded, SAMPLES):
        assert np.array_equal(pair.image, real_images[name])
    # RGBA logo: transparent pixels composited on white, as img2dataset does
    with __import__("PIL.Image").Image.open(io.BytesIO(sample_bytes("logo2.png"))) as im:
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
    assert (alpha == 0).any() and (decoded[1].image[alpha == 0] == 255).all()


def test_jpeg_encoding_is_close(tmp_path, real_images):
    write_shard(tmp_path / "j.tar", real_pairs(real_images)[:1], image_format="jpg", quality=95)
    (pair,) = iter_shard_pairs(str(tmp_path / "j.tar"))
    diff = np.abs(pair.image.astype(int) - real_images["grace_hopper.jpg"].astype(int))
    assert diff.mean() < 3


def test_brace_ranges_expand_in_order(tmp_path, real_images):
    for s in range(3):
        write_shard(tmp_path / f"shard-{s:05d}.tar", real_pairs(real_images, prefix=f"s{s}-"))
    got = [p.key for p in iter_shard_pairs(str(tmp_path / "shard-{00000..00002}.tar"), decode=False)]
    assert got == [f"s{s}-{i:06d}" for s in range(3) for i in range(3)]
    assert expand_braces("a/{00008..00010}.tar") == ["a/00008.tar", "a/00009.tar", "a/00010.tar"]
    assert expand_braces("{cc3m,sbu}-{0..1}.tar") == ["cc3m-0.tar", "cc3m-1.tar", "sbu-0.tar", "sbu-1.tar"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    with pytest.raises(ValueError, match="unbalanced"):
        expand_braces("s/{0..3.tar")


def test_resize_center_crop(real_images):
    img = real_images["grace_hopper.jpg"]                       # 600 x 512 (H x W)
    for size in (224, 420):
        out = resize_center_crop(img, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
    wide = resize_center_crop(real_images["logo2.png"], 64)     # 130 x 542: crop keeps the centre
    assert wide.shape == (64, 64, 3)
    square = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    assert np.array_equal(resize_center_crop(square, 32), square)


# ------------------------------------------------------------------------------- malformed input
def test_missing_caption_names_shard_and_key(tmp_path):
    png = encode_image(np.zeros((8, 8, 3), np.uint8))
    bad = raw_tar(tmp_path / "nocap.tar", [("a.png", png), ("a.txt", b"fine"), ("b.png", png), ("c.png", png),
                                          ("c.txt", b"also fine")])
    with pytest.raises(ShardError, match=r"nocap\.tar: key 'b': no caption member b\.txt") as err:
        list(iter_shard_pairs(str(bad)))
    assert err.value.reason == "missing_caption"
    stats = ShardStats()
    assert [p.key for p in iter_shard_pairs(str(bad), on_error="skip", stats=stats)] == ["a", "c"]
    assert stats.pairs == 2 and stats.skipped == {"missing_caption": 1}


def test_undecodable_image_and_bad_text(tmp_path):
    png = encode_image(np.zeros((8, 8, 3), np.uint8))
    bad = raw_tar(tmp_path / "junk.tar", [("a.jpg", b"\xff\xd8\xff not really a jpeg"), ("a.txt", b"x"),
                                         ("b.png", png), ("b.txt", b"\xff\xfe bytes"),
                                         ("c.png", png), ("c.txt", b"ok"), ("c.json", b"{oops"),
                                         ("d.png", png), ("d.txt", b"  "), ("e.png", png), ("e.txt", b"good")])
    with pytest.raises(ShardError, match=r"junk\.tar: member 'a\.jpg': cannot decode image"):
        list(iter_shard_pairs(str(bad)))
    assert [p.key for p in iter_shard_pairs(str(bad), decode=False, on_error="skip")] == ["a", "e"]
    stats = ShardStats()
    assert [p.key for p in iter_shard_pairs(str(bad), on_error="skip", stats=stats)] == ["e"]
    assert stats.skipped == {"bad_image": 1, "bad_caption": 2, "bad_json": 1}
    assert any("'b.txt'" in m and "not UTF-8" in m for m in stats.examples)


@pytest.mark.parametrize("cut", ["mid_member", "member_boundary"])
def test_truncated_tar(tmp_path, real_images, cut):
    write_shard(tmp_path / "full.tar", real_pairs(real_images))
    data = (tmp_path / "full.tar").read_bytes()
    with tarfile.open(tmp_path / "full.tar") as tar:
        second_png = tar.getmember("000001.png")
    # cut inside the second image's data, or exactly where the second sample's header starts
    end = second_png.offset_data + 100 if cut == "mid_member" else second_png.offset
    (tmp_path / "cut.tar").write_bytes(data[:end])
    with pytest.raises(ShardError, match=r"cut\.tar: .*truncated"):
        list(iter_shard_pairs(str(tmp_path / "cut.tar")))
    stats = ShardStats()
    got = list(iter_shard_pairs([str(tmp_path / "cut.tar"), str(tmp_path / "full.tar")], on_error="skip",
                                stats=stats))
    assert [p.key for p in got] == ["000000", "000000", "000001", "000002"]
    assert stats.skipped == {"truncated": 1}


def test_split_keys_and_not_a_tar(tmp_path):
    png = encode_image(np.zeros((8, 8, 3), np.uint8))
    split = raw_tar(tmp_path / "split.tar", [("a.png", png), ("b.png", png), ("b.txt", b"b"), ("a.txt", b"a")])
    with pytest.raises(ShardError, match="split.tar.*key 'a'"):
        list(iter_shard_pairs(str(split)))
    (tmp_path / "junk.tar").write_bytes(b"hello" * 100)
    with pytest.raises(ShardError, match="junk.tar.*not a readable tar"):
        list(iter_shard_pairs(str(tmp_path / "junk.tar")))
    with pytest.raises(FileNotFoundError, match="nope.tar"):
        list(iter_shard_pairs(str(tmp_path / "nope.tar")))
