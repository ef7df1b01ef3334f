"""Build, freeze, checkpoint and count LynxModel.

* :func:`build_lm` (random init, stage 0) / :func:`load_lm` (a transformers folder or hub id).
* :func:`build_model`: tower + resampler + LM -> :class:`~lynxlib.lynx.LynxModel`.
* :func:`freeze_for_stage`: freeze everything, unfreeze named groups, check the count, return a table.
* :func:`save_trainable` / :func:`load_trainable`: only the trainable weights (safetensors, atomic), the
  resolved config beside them; frozen backbones come from their own checkpoints (paths or hub ids).
* :func:`paper_scale_counts`: the paper's model (EVA ViT-g/14 + LLaMA-7B) on the meta device.

Parameter groups (``lynxlib.config.TRAINABLE_GROUPS`` plus the always-frozen ``tower``): ``resampler``,
``frame_pos``, ``adapters`` (every :class:`Adapter`), ``xattn`` (every gated cross-attention block),
``lm`` (the rest of the decoder, embeddings and head included).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from lynxlib.adapters import Adapter
from lynxlib.config import TRAINABLE_GROUPS, Config, LMConfig, load, to_dict
from lynxlib.lynx import LynxModel
from lynxlib.runs import atomic_path, write_json
from lynxlib.tokenizer import image_token_id
from lynxlib.vision import VisionTower, create_clip
from lynxlib.xattn import GatedCrossAttentionBlock

GROUPS = ("tower", *TRAINABLE_GROUPS)


class CheckpointError(ValueError):
    """A trainable checkpoint that does not fit the model: names the file and the keys."""

WEIGHTS = "trainable.safetensors"
CONFIG = "lynx_config.json"


# ------------------------------------------------------------------------------------------ LM
def build_lm(cfg: LMConfig, *, vocab_size: int, pad_id: int, bos_id: int, eos_id: int) -> LlamaForCausalLM:
    """A LLaMA-architecture decoder at random init (stage 0), untied embeddings as in LLaMA."""
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings, pad_token_id=pad_id, bos_token_id=bos_id,
        eos_token_id=eos_id, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def load_lm(path: str | Path, *, dtype: str = "float32") -> nn.Module:
    """A causal LM from a transformers folder or hub id (offline runs need a local folder), in eval mode."""
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype)).eval()


def check_lm_shape(lm: nn.Module, cfg: LMConfig) -> None:
    """The ``lm`` shape keys describe the checkpoint: fail early, naming the key, when they disagree."""
    have = {"hidden_size": lm.config.hidden_size, "num_layers": lm.config.num_hidden_layers,
            "num_heads": lm.config.num_attention_heads, "intermediate_size": lm.config.intermediate_size}
    wrong = {k: (getattr(cfg, k), v) for k, v in have.items() if getattr(cfg, k) != v}
    if wrong:
        raise ValueError("lm config disagrees with the checkpoint (key: config, checkpoint): "
                         + ", ".join(f"lm.{k}: {a}, {b}" for k, (a, b) in wrong.items()))


def fit_vocab(lm: nn.Module, tokenizer) -> None:
    """Grow the LM's embeddings to the tokenizer (e.g. LLaMA's 32000 + pad = 32001, as the paper).

    ``<image>`` needs no row when it is the last token and beyond the LM's vocabulary: placeholders are
    replaced before the embedding lookup and never predicted.
    """
    vocab = lm.get_input_embeddings().num_embeddings
    needed = len(tokenizer) - (1 if image_token_id(tokenizer) == len(tokenizer) - 1 >= vocab else 0)
    if needed > vocab:
        lm.resize_token_embeddings(needed, mean_resizing=True)


# --------------------------------------------------------------------------------------- model
def as_tower(visual: nn.Module | None, feature_layer: int) -> VisionTower | None:
    """A VisionTower from a tower, an open_clip CLIP (its ``.visual``) or an open_clip visual."""
    if visual is None or isinstance(visual, VisionTower):
        return visual
    return VisionTower(getattr(visual, "visual", visual), feature_layer=feature_layer)


def build_model(cfg: Config, *, tokenizer, lm: nn.Module, clip_visual_or_tower: nn.Module | None) -> LynxModel:
    """Assemble LynxModel from loaded backbones; inserts adapters / cross-attention into ``lm`` in place."""
    check_lm_shape(lm, cfg.lm)
    fit_vocab(lm, tokenizer)
    if lm.config.pad_token_id is None:  # LLaMA/Vicuna configs ship without one; the tokenizer got it
        lm.config.pad_token_id = lm.generation_config.pad_token_id = tokenizer.pad_token_id
    tower = None if cfg.model.blind else as_tower(clip_visual_or_tower, cfg.vision.feature_layer)
    if tower is not None and tower.arch != cfg.vision.arch:
        raise ValueError(f"vision.arch is {cfg.vision.arch!r} but the given tower is {tower.arch!r}")
    return LynxModel(lm=lm, tower=tower, cfg=cfg.model, image_token_id=image_token_id(tokenizer),
                     num_frames=cfg.world.frames, generation=cfg.generation)


# -------------------------------------------------------------------------------------- groups
def param_groups(model: LynxModel) -> dict[str, dict[str, nn.Parameter]]:
    """{group: {name: parameter}} over every parameter of ``model`` (each in exactly one group)."""
    special = {id(p): group for mod in model.modules()
               for group, kind in (("adapters", Adapter), ("xattn", GatedCrossAttentionBlock)) if isinstance(mod, kind)
               for p in mod.parameters()}
    groups: dict[str, dict[str, nn.Parameter]] = {g: {} for g in GROUPS}
    for name, p in model.named_parameters():
        top = name.split(".", 1)[0]
        if top not in ("tower", "resampler", "frame_pos", "lm"):
            raise ValueError(f"parameter {name!r} belongs to no group")
        groups[special.get(id(p), top)][name] = p
    return groups


@dataclass
class ParamTable:
    """Parameters per group and whether the stage trains them; ``print`` it or ``to_frame()``."""

    rows: list[tuple[str, bool, int]] = field(default_factory=list)  # (group, trainable, params)

    @property
    def trainable(self) -> int:
        return sum(n for _, t, n in self.rows if t)

    @property
    def total(self) -> int:
        return sum(n for _, _, n in self.rows)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["group", "trainable", "params"])

    def __str__(self) -> str:
        lines = [f"{'group':<10} {'trainable':>9} {'params':>15}"]
        lines += [f"{g:<10} {'yes' if t else 'no':>9} {n:>15,}" for g, t, n in self.rows]
        lines.append(f"{'total':<10} {self.trainable:>9,} {self.total:>15,}"
                     f"  ({100 * self.trainable / max(self.total, 1):.2f}% trainable)")
        return "\n".join(lines)


def freeze_for_stage(model: LynxModel, trainable: list[str]) -> ParamTable:
    """Freeze all parameters, then unfreeze the named groups; asserts the trainable count adds up."""
    unknown = set(trainable) - set(TRAINABLE_GROUPS)
    if unknown:
        raise ValueError(f"unknown trainable groups {sorted(unknown)} (valid: {TRAINABLE_GROUPS})")
    groups = param_groups(model)
    model.requires_grad_(False)
    for group in trainable:
        for p in groups[group].values():
            p.requires_grad_(True)
    sizes = {g: sum(p.numel() for p in ps.values()) for g, ps in groups.items()}
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = sum(sizes[g] for g in set(trainable))
    assert counted == expected, f"trainable parameters {counted:,} != sum of groups {trainable}: {expected:,}"
    return ParamTable([(g, g in trainable, sizes[g]) for g in GROUPS])


def trainable_groups(model: LynxModel) -> list[str]:
    """Groups whose parameters are all trainable (a partly trainable group is an error)."""
    out = []
    for group, params in param_groups(model).items():
        flags = {p.requires_grad for p in params.values()}
        if len(flags) > 1:
            raise ValueError(f"group {group!r} is partly trainable: use freeze_for_stage")
        if flags == {True}:
            out.append(group)
    return out


# ---------------------------------------------------------------------------------- checkpoint
def save_trainable(model: LynxModel, directory: str | Path, cfg: Config) -> Path:
    """Write the trainable weights (``trainable.safetensors``) and the resolved config beside them."""
    directory = Path(directory)
    groups = trainable_groups(model)
    named = param_groups(model)
    tensors = {n: p.detach().cpu().contiguous() for g in groups for n, p in named[g].items()}
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"groups": json.dumps(groups), "format": "pt"})
    write_json(directory / CONFIG, to_dict(cfg))
    return directory / WEIGHTS


def _key_error(kind: str, keys: set[str], path: Path) -> str:
    shown = ", ".join(sorted(keys)[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "")
    return f"{path}: {kind} keys: {shown}"


def load_trainable(model: LynxModel, directory: str | Path) -> list[str]:
    """Load weights written by :func:`save_trainable` (strict: same keys and shapes); returns their groups."""
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"no trainable checkpoint at {path}")
    with safe_open(str(path), framework="pt") as f:
        groups = json.loads((f.metadata() or {}).get("groups", "[]"))
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    named = param_groups(model)
    expected = {n: p for g in groups for n, p in named[g].items()}
    missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
    if missing or extra:
        raise CheckpointError("; ".join(_key_error(k, s, path) for k, s in (("missing", missing), ("unexpected", extra)) if s)
                       + " (was it saved from a model built with another config?)")
    for name, value in tensors.items():
        if value.shape != expected[name].shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(value.shape)}, model {tuple(expected[name].shape)}")
    with torch.no_grad():
        for name, value in tensors.items():
            expected[name].copy_(value)
    return groups


# --------------------------------------------------------------------------------- paper scale
def paper_scale_counts(adapter_every: int = 2, *, cfg: Config | None = None) -> dict:
    """Parameter counts of the paper's model, built on the meta device (no memory).

    Tower: open_clip ``EVA01-g-14`` = timm ``eva_giant_patch14_224`` (width 1408, depth 40, MLP 6144),
    its CLIP projection head included (frozen, unused). LM: LLaMA-7B shape, vocabulary 32000 + 1 pad.
    """
    cfg = copy.deepcopy(cfg or load("params/paper.yaml", "ours"))
    cfg.model.adapter.every = adapter_every
    with torch.device("meta"):
        clip = create_clip(cfg, device="meta")
        lm = build_lm(cfg.lm, vocab_size=32001, pad_id=32000, bos_id=1, eos_id=2)
        model = LynxModel(lm=lm, tower=VisionTower(clip.visual, feature_layer=cfg.vision.feature_layer),
                          cfg=cfg.model, image_token_id=32001, num_frames=cfg.world.frames)
    assert all(p.is_meta for p in model.parameters()), "paper-scale build allocated memory"
    counts = {g: sum(p.numel() for p in ps.values()) for g, ps in param_groups(model).items()}
    counts |= {"adapter_layers": len(model.adapter_layers), "total": sum(p.numel() for p in model.parameters()),
               "tower_name": f"open_clip {cfg.vision.open_clip_name} (timm eva_giant_patch14_224)"}
    return counts
