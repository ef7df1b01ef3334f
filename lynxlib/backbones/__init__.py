"""Stage 0 (smoke/tiny scales): the study's own pretrained backbones, in the formats real ones come in.

No pretrained weights can be downloaded where the study runs, so it makes them from the synthetic
world's data:

==============  =================================================  =======================================
piece           how                                                written as
==============  =================================================  =======================================
tokenizer       byte-level BPE on the world's text                 ``tokenizer/`` (``save_pretrained``)
"LLaMA"         LLaMA-architecture LM, next-token on the corpus    ``llama/`` (transformers, safetensors)
"Vicuna"        "LLaMA" tuned on text instructions (responses)     ``vicuna/`` (transformers, safetensors)
"EVA-CLIP"      open_clip ViT + text tower, ClipLoss at both       ``tower/open_clip.pt`` +
                resolutions, + caption-word heads on the tokens    ``open_clip_config.json`` (hub layout)
==============  =================================================  =======================================

Each comes with a measured quality gate (:mod:`lynxlib.backbones.gates`), written to ``gates.json``
with a pass/fail ``summary``. ``train_backbones`` reuses finished pieces of the same configuration
(each piece folder carries the stage-0 key) and writes a completion marker last, so a killed run
resumes where it stopped. With ``backbones.parallel`` the LMs and the tower train in two processes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lynxlib.backbones.common import Timer, atomic_dir
from lynxlib.backbones.gates import (linear_probe, lm_perplexity, probe_features, reading_accuracy, style_following,
                                     summarize, token_probe, unigram_counts, zero_shot_retrieval)
from lynxlib.backbones.heldout import (heldout_instructions, heldout_lookups, heldout_reading, heldout_scenes,
                                      reading_template)
from lynxlib.backbones.lm import instruct_lm, pretrain_lm, save_lm, world_texts
from lynxlib.backbones.tower import encode, train_tower, world_pairs
from lynxlib.config import Config
from lynxlib.runs import file_lock, read_json, set_threads, write_json
from lynxlib.tokenizer import load_tokenizer, train_tokenizer

__all__ = ["BackbonePaths", "BackboneReport", "backbone_paths", "train_backbones", "backbones_key",
           "lm_perplexity", "reading_accuracy", "heldout_lookups", "heldout_reading", "style_following", "zero_shot_retrieval",
           "token_probe", "linear_probe",
           "probe_features", "unigram_counts", "tower_gates", "lm_gates", "read_gates", "heldout_scenes",
           "heldout_instructions", "summarize"]

PIECE_MARKER = "stage0.json"  # inside each piece folder: the key it was trained under


@dataclass(frozen=True)
class BackbonePaths:
    """Where stage 0 writes each backbone (all under one folder)."""

    root: Path
    tokenizer: Path
    llama: Path
    vicuna: Path
    tower_dir: Path
    tower: Path          # open_clip checkpoint (state_dict), load with lynxlib.vision.load_clip
    tower_config: Path   # the open_clip model config json it was built from
    gates: Path
    done: Path           # completion marker, written last

    def complete(self) -> bool:
        return self.done.is_file()


def backbone_paths(out_dir: str | Path) -> BackbonePaths:
    root = Path(out_dir)
    return BackbonePaths(root=root, tokenizer=root / "tokenizer", llama=root / "llama", vicuna=root / "vicuna",
                         tower_dir=root / "tower", tower=root / "tower" / "open_clip.pt",
                         tower_config=root / "tower" / "open_clip_config.json", gates=root / "gates.json",
                         done=root / "DONE.json")


def read_gates(out_dir: str | Path) -> dict:
    """The gates a finished stage 0 measured (``gates.json``)."""
    return read_json(backbone_paths(out_dir).gates)


@dataclass
class BackboneReport:
    paths: BackbonePaths
    key: str
    gates: dict
    times: dict[str, float] = field(default_factory=dict)   # wall seconds per piece when it was trained
    curves: dict[str, list] = field(default_factory=dict)   # training losses per piece (this run's)
    reused: list[str] = field(default_factory=list)         # pieces loaded instead of trained


def backbones_key(cfg: Config) -> str:
    """The stage-0 key: the config sections stage 0 depends on, chained to the world's key."""
    from lynxlib.stages import stage_key

    return stage_key(cfg, "backbones")


# ----------------------------------------------------------------------------------- gates
def lm_gates(cfg: Config, tok, llama, vicuna, train_texts, heldout_texts, style_samples) -> dict:
    uni = unigram_counts(tok, train_texts)
    passages = heldout_reading(cfg)
    return {
        "llama": lm_perplexity(llama, tok, heldout_texts, unigram=uni),
        "vicuna": lm_perplexity(vicuna, tok, heldout_texts, unigram=uni),
        # each LM read as it is used: LLaMA in its corpus's format, Vicuna in the chat template
        "reading": {"llama": reading_accuracy(llama, tok, passages),
                    "vicuna": reading_accuracy(vicuna, tok, passages, template=reading_template(cfg))},
        "style": style_following({"llama": llama, "vicuna": vicuna}, tok, style_samples,
                                 template=cfg.generation.template, max_new_tokens=cfg.generation.max_new_tokens,
                                 batch_size=cfg.generation.batch_size),
    }


def tower_gates(cfg: Config, clip, tok, scenes, images: dict[int, np.ndarray], captions: list[str]) -> dict:
    """Zero-shot retrieval and the token probe at each resolution, on the tokens the resampler reads
    (``lynxlib.vision.VisionTower`` at ``feature_layer``)."""
    from lynxlib.vision import VisionTower, to_pixel_values

    tower = VisionTower(clip.visual, feature_layer=cfg.vision.feature_layer)
    out: dict[str, Any] = {}
    for size, imgs in sorted(images.items()):
        emb = encode(clip, tok, imgs, captions, feature_layer=cfg.vision.feature_layer)
        tower.set_resolution(size)
        with torch.no_grad():
            tokens = torch.cat([tower(to_pixel_values(imgs[i: i + 64])) for i in range(0, len(imgs), 64)])
        out[str(size)] = {"retrieval": zero_shot_retrieval(emb["image"], emb["text"]),
                          "probe": token_probe(probe_features(tokens, scenes))}
    return out


# ----------------------------------------------------------------------------------- driver
def _piece_done(path: Path, key: str) -> bool:
    marker = path / PIECE_MARKER
    return marker.is_file() and read_json(marker).get("key") == key


def _mark(path: Path, key: str, seconds: float) -> None:
    write_json(path / PIECE_MARKER, {"key": key, "seconds": seconds})


def _finished(paths: BackbonePaths, key: str) -> BackboneReport | None:
    if paths.complete() and read_json(paths.done).get("key") == key:
        return BackboneReport(paths, key, read_json(paths.gates), read_json(paths.done).get("times", {}), {},
                              ["tokenizer", "llama", "vicuna", "tower", "gates"])
    return None


def _clip_kwargs(cfg: Config, tok) -> dict:
    """The text tower is sized by ``cfg.tokenizer.vocab_size`` (>= the BPE's size), so that
    ``lynxlib.vision.load_clip(path, cfg)`` rebuilds the model from the config alone."""
    if len(tok) > cfg.tokenizer.vocab_size:
        raise ValueError(f"tokenizer has {len(tok)} ids, more than tokenizer.vocab_size={cfg.tokenizer.vocab_size}")
    return {"vocab_size": cfg.tokenizer.vocab_size, "pad_id": tok.pad_token_id, "eos_id": tok.eos_token_id}


def _lm_pieces(cfg: Config, paths: BackbonePaths, key: str, world, progress: bool, threads: int) -> dict:
    """Train and save "LLaMA" then "Vicuna" (each unless already done); returns their loss curves."""
    set_threads(threads)
    world = _store(world)
    tok, texts, curves = load_tokenizer(paths.tokenizer), world_texts(world), {}
    if not _piece_done(paths.llama, key):
        with Timer() as t:
            model, curves["llama"] = pretrain_lm(cfg, tok, texts["corpus"], progress=progress)
        with atomic_dir(paths.llama) as tmp:
            save_lm(model, tok, tmp)
            _mark(tmp, key, t.seconds)
    if not _piece_done(paths.vicuna, key):
        from lynxlib.build import load_lm

        with Timer() as t:
            model, curves["vicuna"] = instruct_lm(cfg, tok, load_lm(paths.llama), texts["instructions"],
                                                  progress=progress)
        with atomic_dir(paths.vicuna) as tmp:
            save_lm(model, tok, tmp)
            _mark(tmp, key, t.seconds)
    return curves


def _tower_piece(cfg: Config, paths: BackbonePaths, key: str, world, progress: bool, threads: int) -> dict:
    """CLIP-train and save the tower (unless already done); returns its loss curve."""
    from lynxlib.vision import create_clip

    set_threads(threads)
    if _piece_done(paths.tower_dir, key):
        return {}
    tok = load_tokenizer(paths.tokenizer)
    kwargs = _clip_kwargs(cfg, tok)
    with Timer() as t:
        torch.manual_seed(cfg.backbones.seed)
        clip = create_clip(cfg, **kwargs)
        clip, curve = train_tower(cfg, clip, tok, *world_pairs(cfg, _store(world)), progress=progress)
    with atomic_dir(paths.tower_dir) as tmp:
        torch.save(clip.state_dict(), tmp / paths.tower.name)
        if cfg.vision.stem == "patch":  # the hub layout too: open_clip.create_model("local-dir:<tower_dir>")
            (tmp / "open_clip_pytorch_model.bin").symlink_to(paths.tower.name)
        write_json(tmp / paths.tower_config.name, _clip_config(cfg, clip, kwargs))
        _mark(tmp, key, t.seconds)
    return {"tower": curve}


def _store(world):
    """A WorldStore (child processes get its folder and reopen it)."""
    from lynxlib.world import WorldStore

    return WorldStore(world) if isinstance(world, (str, Path)) else world


def _train_pieces(cfg: Config, paths: BackbonePaths, key: str, world, progress: bool) -> dict:
    """The LM pieces and the tower: one after the other, or (``backbones.parallel``) in two processes
    at once, each with half the threads -- they are independent once the tokenizer exists."""
    import os

    jobs = [job for job, done in ((_lm_pieces, _piece_done(paths.llama, key) and _piece_done(paths.vicuna, key)),
                                  (_tower_piece, _piece_done(paths.tower_dir, key))) if not done]
    threads = cfg.threads or torch.get_num_threads()
    if not (cfg.backbones.parallel and len(jobs) == 2 and (os.cpu_count() or 1) >= 2):
        curves = {}
        for job in jobs:
            curves |= job(cfg, paths, key, world, progress, threads)
        return curves
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    half = max(1, threads // 2)
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(job, cfg, paths, key, world.root, progress, half) for job in jobs]
        return {k: v for f in futures for k, v in f.result().items()}


def train_backbones(cfg: Config, *, out_dir: str | Path, world, progress: bool = True) -> BackboneReport:
    """Train (or reuse) the tokenizer, "LLaMA", "Vicuna" and the tower; measure their gates.

    ``world`` is a :class:`lynxlib.world.WorldStore` of ``cfg.world`` (or its folder). Writes
    ``out_dir/{tokenizer,llama,vicuna,tower}/``, ``gates.json`` and, last, ``DONE.json``; pieces
    already trained under the same key are reused, so a killed run resumes where it stopped. With
    ``backbones.parallel`` the pieces train in spawned processes, which re-import the calling script:
    a script must call this (or anything that reaches it) under ``if __name__ == "__main__":``, or
    the children wait forever on the lock the parent holds.
    """
    from lynxlib.build import load_lm
    from lynxlib.vision import load_clip

    set_threads(cfg.threads)
    paths = backbone_paths(out_dir)
    key = backbones_key(cfg)
    if (done := _finished(paths, key)) is not None:
        return done
    world = _store(world)
    paths.root.mkdir(parents=True, exist_ok=True)
    pieces = {"tokenizer": paths.tokenizer, "llama": paths.llama, "vicuna": paths.vicuna, "tower": paths.tower_dir}
    report = BackboneReport(paths, key, {}, reused=[n for n, p in pieces.items() if _piece_done(p, key)])
    with file_lock(paths.root / ".lock"):
        if (done := _finished(paths, key)) is not None:  # another process finished it while we waited
            return done
        texts = world_texts(world)
        if not _piece_done(paths.tokenizer, key):
            with Timer() as t:
                captions = [c for _, c in world.captions("clean")]
                corpus = texts["corpus"] + [x for s in texts["instructions"] for turn in s.turns for x in turn] + captions
                tok = train_tokenizer(corpus, vocab_size=cfg.tokenizer.vocab_size)
            with atomic_dir(paths.tokenizer) as tmp:
                tok.save_pretrained(tmp)
                _mark(tmp, key, t.seconds)
        report.curves = _train_pieces(cfg, paths, key, world, progress)

        tok = load_tokenizer(paths.tokenizer)
        llama, vicuna = load_lm(paths.llama), load_lm(paths.vicuna)
        clip = load_clip(paths.tower, cfg, **_clip_kwargs(cfg, tok)).eval()
        with Timer() as t:
            gates = {"lm": lm_gates(cfg, tok, llama, vicuna, texts["corpus"], texts["heldout"],
                                    heldout_instructions(cfg)),
                     "tower": tower_gates(cfg, clip, tok, *heldout_scenes(cfg))}
        # seconds each piece took when it was trained (this run, or the run whose piece was reused)
        report.times = {n: read_json(p / PIECE_MARKER)["seconds"] for n, p in pieces.items()} | {"gates": t.seconds}
        gates["times"] = dict(report.times)
        gates["summary"] = summarize(gates)
        report.gates = gates
        write_json(paths.gates, gates)
        write_json(paths.done, {"key": key, "times": report.times})
    return report


def _clip_config(cfg: Config, clip, clip_kwargs: dict) -> dict:
    """``open_clip_config.json`` as on the hub: the model config the tower was built from and its
    preprocessing (``open_clip.create_model("local-dir:...")`` reads it)."""
    import open_clip

    from lynxlib.vision import TINY_PREFIX, clip_model_kwargs

    if cfg.vision.open_clip_name.startswith(TINY_PREFIX):
        model_cfg = clip_model_kwargs(cfg, **clip_kwargs)
    else:
        model_cfg = open_clip.get_model_config(cfg.vision.open_clip_name)
    preprocess = {k: v for k, v in (getattr(clip.visual, "preprocess_cfg", None) or {}).items()
                  if k in ("size", "mean", "std", "interpolation", "resize_mode")}
    return {"model_cfg": model_cfg, "preprocess_cfg": preprocess, "lynx_vision_stem": cfg.vision.stem}
