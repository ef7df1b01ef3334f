"""The world on disk: write once per config, stream back with memory-mapped arrays.

Layout under ``out_dir`` (every file written atomically; ``manifest.json`` last, so a killed write is
never mistaken for a complete one)::

    manifest.json                    config, config hash, generator version, counts, files
    train/, eval/                    scenes.jsonl, clips.jsonl, images_{low,high}.npy (N, H, W, 3) uint8,
                                     videos_{low,high}.npy (M, F, H, W, 3) uint8
    train/captions_{clean,noisy}.jsonl  {"index", "caption"}: 1 clean and noisy_multiplier noisy per scene
    text/corpus.txt, text/instructions.jsonl
    open_vqa_mini/                   Open_VQA_{images,videos}.jsonl, scenes/clips, arrays, images/*.png, videos/*.gif
    mme_mini/                        <subtask>.txt (image, question, ground truth), scenes.jsonl, arrays, images/*.png
    owleval_mini/                    questions.jsonl, scenes.jsonl, arrays, images/*.png
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lynxlib.config import WorldConfig, config_hash
from lynxlib.formats import MMERow, read_mme_questions, read_open_vqa, write_mme_questions, write_open_vqa
from lynxlib.runs import atomic_path, atomic_write_text, file_lock, read_json, show_progress, write_json
from lynxlib.world.evalsets import mme_mini, open_vqa_mini, open_vqa_plan, owleval_mini
from lynxlib.world.language import clean_caption, noisy_caption
from lynxlib.world.registry import text_instructions
from lynxlib.world.render import render_scene_sizes
from lynxlib.world.sample import Sample
from lynxlib.world.scene import Scene, sample_scene, stream_rng
from lynxlib.world.textdata import text_corpus
from lynxlib.world.video import Clip, render_clip_sizes, sample_clip

GENERATOR_VERSION = 2   # bump when generation changes: stored worlds of older versions are regenerated
RESOLUTIONS = ("low", "high")


def _world_cfg(cfg: Any) -> WorldConfig:
    return cfg.world if hasattr(cfg, "world") else cfg


def _sizes(cfg: WorldConfig) -> dict[str, int]:
    return {"low": cfg.image_size_low, "high": cfg.image_size_high}


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _render_arrays(folder: Path, items: Sequence[Any], render: Callable, sizes: dict[str, int], frames: int | None,
                   prefix: str, desc: str, progress: bool) -> list[Path]:
    """Render every item once and fill ``{prefix}_{low,high}.npy`` memmaps; returns the paths."""
    lead = (len(items), frames) if frames else (len(items),)
    paths = [folder / f"{prefix}_{r}.npy" for r in RESOLUTIONS]
    with atomic_path(paths[0]) as tmp_low, atomic_path(paths[1]) as tmp_high:
        arrays = {r: np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(*lead, sizes[r], sizes[r], 3))
                  for r, tmp in zip(RESOLUTIONS, (tmp_low, tmp_high))}
        for i, item in enumerate(tqdm(items, desc=desc, disable=not show_progress(progress), leave=False)):
            out = render(item, tuple(sizes.values()))
            for r in RESOLUTIONS:
                arrays[r][i] = out[sizes[r]]
        for array in arrays.values():
            array.flush()
        del arrays
    return paths


def _write_pngs(folder: Path, images: np.ndarray, names: Sequence[str]) -> None:
    for image, name in zip(images, names):
        with atomic_path(folder / name) as tmp:
            Image.fromarray(np.asarray(image)).save(tmp, format="PNG")


def _write_gifs(folder: Path, videos: np.ndarray, names: Sequence[str]) -> None:
    for video, name in zip(videos, names):
        frames = [Image.fromarray(np.asarray(f)) for f in video]
        with atomic_path(folder / name) as tmp:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=400, loop=0)


def _write_visuals(folder: Path, scenes: Sequence[Scene], clips: Sequence[Clip] | None, cfg: WorldConfig,
                   progress: bool) -> list[Path]:
    """scenes.jsonl + image arrays, and (unless ``clips`` is None) clips.jsonl + video arrays."""
    sizes = _sizes(cfg)
    files = []
    write_jsonl(folder / "scenes.jsonl", [s.to_dict() for s in scenes])
    files.append(folder / "scenes.jsonl")
    files += _render_arrays(folder, scenes, render_scene_sizes, sizes, None, "images", f"{folder.name} images", progress)
    if clips is not None:
        write_jsonl(folder / "clips.jsonl", [c.to_dict() for c in clips])
        files.append(folder / "clips.jsonl")
        files += _render_arrays(folder, clips, render_clip_sizes, sizes, cfg.frames, "videos",
                                f"{folder.name} videos", progress)
    return files


def _split(cfg: WorldConfig, name: str, n_scenes: int, n_clips: int) -> tuple[list[Scene], list[Clip]]:
    scenes = [sample_scene(stream_rng(cfg.seed, f"{name}-scene", i), cfg) for i in range(n_scenes)]
    clips = [sample_clip(stream_rng(cfg.seed, f"{name}-clip", i), cfg) for i in range(n_clips)]
    return scenes, clips


def _write_captions(folder: Path, scenes: Sequence[Scene], cfg: WorldConfig) -> list[Path]:
    clean = [{"index": i, "caption": clean_caption(s, stream_rng(cfg.seed, "caption-clean", i))}
             for i, s in enumerate(scenes)]
    m = cfg.noisy_multiplier
    noisy = [{"index": i, "caption": noisy_caption(s, stream_rng(cfg.seed, "caption-noisy", i * m + j))}
             for i, s in enumerate(scenes) for j in range(m)]
    write_jsonl(folder / "captions_clean.jsonl", clean)
    write_jsonl(folder / "captions_noisy.jsonl", noisy)
    return [folder / "captions_clean.jsonl", folder / "captions_noisy.jsonl"]


def _write_text(folder: Path, cfg: WorldConfig) -> list[Path]:
    corpus = text_corpus(cfg, stream_rng(cfg.seed, "corpus", 0))
    atomic_write_text(folder / "corpus.txt", "".join(line + "\n" for line in corpus))
    instructions = text_instructions(cfg, stream_rng(cfg.seed, "text-instructions", 0))
    write_jsonl(folder / "instructions.jsonl", [s.to_dict() for s in instructions])
    return [folder / "corpus.txt", folder / "instructions.jsonl"]


def _write_open_vqa(folder: Path, cfg: WorldConfig, progress: bool) -> list[Path]:
    image_records, video_records, scenes, clips = open_vqa_mini(cfg)
    files = [write_open_vqa(folder / "Open_VQA_images.jsonl", image_records),
             write_open_vqa(folder / "Open_VQA_videos.jsonl", video_records)]
    files += _write_visuals(folder, scenes, clips, cfg, progress)
    _write_pngs(folder, np.load(folder / "images_high.npy", mmap_mode="r"), [r["image"] for r in image_records])
    _write_gifs(folder, np.load(folder / "videos_high.npy", mmap_mode="r"), [r["video"] for r in video_records])
    return files


def _write_mme(folder: Path, cfg: WorldConfig, progress: bool) -> list[Path]:
    rows, scenes = mme_mini(cfg)
    files = [write_mme_questions(folder / f"{subtask}.txt", subtask_rows) for subtask, subtask_rows in rows.items()]
    files += _write_visuals(folder, scenes, None, cfg, progress)
    _write_pngs(folder / "images", np.load(folder / "images_high.npy", mmap_mode="r"),
                [f"{k:05d}.png" for k in range(len(scenes))])
    return files


def _write_owleval(folder: Path, cfg: WorldConfig, progress: bool) -> list[Path]:
    records, scenes = owleval_mini(cfg)
    write_jsonl(folder / "questions.jsonl", records)
    files = [folder / "questions.jsonl", *_write_visuals(folder, scenes, None, cfg, progress)]
    _write_pngs(folder, np.load(folder / "images_high.npy", mmap_mode="r"), [r["image"] for r in records])
    return files


def is_complete(out_dir: str | Path, cfg: Any) -> dict | None:
    """The manifest of a complete world for ``cfg`` at ``out_dir``, else None."""
    cfg = _world_cfg(cfg)
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        return None
    manifest = read_json(path)
    same = manifest.get("config_hash") == config_hash(cfg) and manifest.get("generator_version") == GENERATOR_VERSION
    files_ok = all((Path(out_dir) / f).is_file() for f in manifest.get("files", []))
    return manifest if same and files_ok else None


def write_world(cfg: Any, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Generate and store the whole world for ``cfg`` (a WorldConfig or a Config); returns the manifest.

    A complete world for the same config hash and generator version is reused as is. Concurrent
    writers of one ``out_dir`` serialise on a lock file.
    """
    cfg, out = _world_cfg(cfg), Path(out_dir)
    with file_lock(out / ".lock"):
        manifest = is_complete(out, cfg)
        if manifest is not None:
            return manifest
        (out / "manifest.json").unlink(missing_ok=True)
        train_scenes, train_clips = _split(cfg, "train", cfg.train_scenes, cfg.train_clips)
        eval_scenes, eval_clips = _split(cfg, "eval", cfg.eval_scenes, cfg.eval_clips)
        files = _write_visuals(out / "train", train_scenes, train_clips, cfg, progress)
        files += _write_captions(out / "train", train_scenes, cfg)
        files += _write_visuals(out / "eval", eval_scenes, eval_clips, cfg, progress)
        files += _write_text(out / "text", cfg)
        files += _write_open_vqa(out / "open_vqa_mini", cfg, progress)
        files += _write_mme(out / "mme_mini", cfg, progress)
        files += _write_owleval(out / "owleval_mini", cfg, progress)
        manifest = {"config_hash": config_hash(cfg), "generator_version": GENERATOR_VERSION, "config": asdict(cfg),
                    "counts": _counts(out), "files": sorted(str(Path(f).relative_to(out)) for f in files)}
        write_json(out / "manifest.json", manifest)
    return read_json(out / "manifest.json")  # as a reuse would return it (keys sorted)


def _counts(out: Path) -> dict[str, int]:
    def lines(path: Path) -> int:
        return sum(1 for line in path.read_text().splitlines() if line.strip())

    counts = {f"{split}_{kind}": lines(out / split / f"{kind}.jsonl") for split in ("train", "eval")
              for kind in ("scenes", "clips")}
    counts |= {"captions_clean": lines(out / "train" / "captions_clean.jsonl"),
               "captions_noisy": lines(out / "train" / "captions_noisy.jsonl"),
               "corpus": lines(out / "text" / "corpus.txt"),
               "text_instructions": lines(out / "text" / "instructions.jsonl"),
               "open_vqa_images": lines(out / "open_vqa_mini" / "Open_VQA_images.jsonl"),
               "open_vqa_videos": lines(out / "open_vqa_mini" / "Open_VQA_videos.jsonl"),
               "mme_questions": sum(lines(p) for p in (out / "mme_mini").glob("*.txt")),
               "owleval": lines(out / "owleval_mini" / "questions.jsonl")}
    return counts


class WorldStore:
    """Read a world written by :func:`write_world`. Arrays are memory-mapped (``np.load(mmap_mode="r")``).

    Splits with visuals: ``train``, ``eval``, ``open_vqa_mini``, ``mme_mini``, ``owleval_mini``;
    ``resolution`` is "low", "high" or the pixel size.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.root}: no manifest.json: not a complete world (run write_world first)")
        self.manifest = read_json(path)
        self.config = WorldConfig(**self.manifest["config"])
        self._cache: dict[tuple, Any] = {}

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def _resolution(self, resolution: str | int) -> str:
        sizes = _sizes(self.config)
        if resolution in sizes:
            return str(resolution)
        for name, size in sizes.items():
            if resolution == size:
                return name
        raise ValueError(f"resolution must be 'low', 'high' or one of {sorted(sizes.values())}, got {resolution!r}")

    def _cached(self, key: tuple, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def scenes(self, split: str = "train") -> list[Scene]:
        return self._cached(("scenes", split), lambda: [Scene.from_dict(d) for d in read_jsonl(self.path(split, "scenes.jsonl"))])

    def clips(self, split: str = "train") -> list[Clip]:
        return self._cached(("clips", split), lambda: [Clip.from_dict(d) for d in read_jsonl(self.path(split, "clips.jsonl"))])

    def images(self, split: str = "train", resolution: str | int = "low") -> np.ndarray:
        """(N, H, W, 3) uint8 memmap; row i renders ``scenes(split)[i]``."""
        return np.load(self.path(split, f"images_{self._resolution(resolution)}.npy"), mmap_mode="r")

    def videos(self, split: str = "train", resolution: str | int = "low") -> np.ndarray:
        """(M, F, H, W, 3) uint8 memmap; row i renders ``clips(split)[i]``."""
        return np.load(self.path(split, f"videos_{self._resolution(resolution)}.npy"), mmap_mode="r")

    def captions(self, pool: str = "clean") -> list[tuple[int, str]]:
        """(train scene index, caption) pairs of the clean or the noisy pool."""
        if pool not in ("clean", "noisy"):
            raise ValueError(f"caption pool must be 'clean' or 'noisy', got {pool!r}")
        rows = self._cached(("captions", pool), lambda: read_jsonl(self.path("train", f"captions_{pool}.jsonl")))
        return [(r["index"], r["caption"]) for r in rows]

    def corpus(self) -> list[str]:
        return self.path("text", "corpus.txt").read_text().splitlines()

    def text_instructions(self) -> list[Sample]:
        return [Sample.from_dict(d) for d in read_jsonl(self.path("text", "instructions.jsonl"))]

    def open_vqa(self, kind: str = "image") -> list[dict]:
        """Open-VQA-mini records; record k's visual is row k of ``images/videos("open_vqa_mini", ...)``."""
        return read_open_vqa(self.path("open_vqa_mini", f"Open_VQA_{kind}s.jsonl"))

    def open_vqa_qtypes(self, kind: str = "image") -> list[str]:
        """The question type of each Open-VQA-mini record of ``kind`` (Spatial: relation, relation_yn,
        grid_position), replayed from the world's config; checked against the records' categories."""
        records, plan = self.open_vqa(kind), open_vqa_plan(self.config, kind)
        if len(plan) != len(records):
            raise ValueError(f"{self.root}: {len(records)} Open-VQA-mini {kind} records, but its config "
                             f"plans {len(plan)}: the world was written by another version of lynxlib.world")
        for k, (record, (category, _, _)) in enumerate(zip(records, plan)):
            if record.get("class") != category:
                raise ValueError(f"{self.root}: Open-VQA-mini {kind} record {k} is {record.get('class')!r}, "
                                 f"its config plans {category!r}: the world was written by another version")
        return [qtype for _, qtype, _ in plan]

    def mme_subtasks(self) -> list[str]:
        return sorted(p.stem for p in self.path("mme_mini").glob("*.txt"))

    def mme(self, subtask: str) -> list[MMERow]:
        """MME-mini rows of one subtask; image '{k:05d}.png' is row k of ``images("mme_mini", ...)``."""
        return read_mme_questions(self.path("mme_mini", f"{subtask}.txt"))

    def owleval(self) -> list[dict]:
        return read_jsonl(self.path("owleval_mini", "questions.jsonl"))
