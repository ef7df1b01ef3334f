"""Loading params: merge a scale file and a variant override, check every key and type, resolve."""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from lynxlib.config.schema import (CHOICES, STAGE_CHOICES, TRAINING_STAGES, TEXT_ONLY_TASKS, TRAINABLE_GROUPS, Config)
from lynxlib.runs import resolve


FLOAT_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """Bad params: raised before any work starts, naming the file and key."""


class KeyEdits(dict):
    """Overrides addressed key by key (command-line ``a.b.c=v``): merged even into a ``mixture``,
    which a file's mapping replaces whole (a variant's mixture is a distribution, not a patch)."""


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in; nested dicts merge, everything else replaces.

    A ``mixture`` (or ``opening_mixture``) mapping replaces the base's whole unless it is
    :class:`KeyEdits`, so ``--set instruct.mixture.vqa_ocr=12`` changes one weight and keeps the others."""
    merged = dict(base)
    for key, value in override.items():
        mergeable = not key.endswith("mixture") or isinstance(value, KeyEdits)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and mergeable:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [opt for opt in options if opt is not type(None)]
        return _check_type(value, inner[0], where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_t, val_t = typing.get_args(hint)
        return {_check_type(k, key_t, where): _check_type(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and FLOAT_LITERAL.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 (PyYAML) reads ``1e-3``, without a dot, as a string
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields_by_name = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields_by_name)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in hints:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{(where + '.') if where else ''}{near[0]}'?" if near else ""
            raise ConfigError(f"unknown key '{dotted}'{hint} (valid: {', '.join(names)})")
        hint_t = hints[key]
        if dataclasses.is_dataclass(hint_t):
            # start from the field's own default (e.g. pretrain_high defaults to resolution "high")
            default = fields_by_name[key].default_factory()
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a mapping, got {value!r}")
            kwargs[key] = from_dict(hint_t, _edit_defaults(_shallow(default), value), dotted)
        else:
            kwargs[key] = _check_type(value, hint_t, dotted)
    return cls(**kwargs)


def _edit_defaults(defaults: dict, value: dict) -> dict:
    """A section's values over its dataclass defaults; a :class:`KeyEdits` mapping edits the default's
    keys (``--set pretrain_high.mixture.vqa_ocr=3`` adds OCR beside the default ``caption_pair``)."""
    return {**defaults, **{key: deep_merge(defaults[key], edit)
                           if isinstance(edit, KeyEdits) and isinstance(defaults.get(key), dict) else edit
                           for key, edit in value.items()}}


def _check_opening(stage: str, stage_cfg) -> None:
    """An opening needs its own mixture and must leave the stage's mixture some steps."""
    steps, mixture = stage_cfg.opening_steps, stage_cfg.opening_mixture
    if stage_cfg.opening_schedule == "restart" and not steps:
        raise ConfigError(f"{stage}.opening_schedule: 'restart' needs an opening ({stage}.opening_steps is 0)")
    if not (steps or mixture):
        return
    if mixture and not steps:
        raise ConfigError(f"{stage}.opening_mixture is set but {stage}.opening_steps is 0: set both, or neither")
    if not 0 <= steps < stage_cfg.steps:
        raise ConfigError(f"{stage}.opening_steps: {steps} must be >= 0 and below {stage}.steps ({stage_cfg.steps})")
    if any(w < 0 for w in mixture.values()) or not sum(mixture.values()):
        raise ConfigError(f"{stage}.opening_mixture: {mixture!r} needs weights >= 0 and one task above 0 "
                          f"when {stage}.opening_steps is {steps}")


def _shallow(instance: Any) -> dict:
    """A dataclass instance's fields as a dict, nested dataclasses kept as dicts (for re-validation)."""
    return {f.name: dataclasses.asdict(v) if dataclasses.is_dataclass(v := getattr(instance, f.name)) else v
            for f in dataclasses.fields(instance)}


def validate(cfg: Config) -> None:
    """Check values that types cannot: choices, trainable groups, sizes."""
    flat = to_dict(cfg)
    for dotted, allowed in CHOICES.items():
        value = flat
        for part in dotted.split("."):
            value = value[part]
        if value not in allowed:
            raise ConfigError(f"{dotted}: {value!r} is not one of {allowed}")
    for stage in TRAINING_STAGES:
        stage_cfg = getattr(cfg, stage)
        for key, allowed in STAGE_CHOICES.items():
            if getattr(stage_cfg, key) not in allowed:
                raise ConfigError(f"{stage}.{key}: {getattr(stage_cfg, key)!r} is not one of {allowed}")
        for group in stage_cfg.trainable:
            if group not in TRAINABLE_GROUPS:
                raise ConfigError(f"{stage}.trainable: unknown group {group!r} (valid: {TRAINABLE_GROUPS})")
        if any(w < 0 for w in stage_cfg.mixture.values()) or not stage_cfg.mixture:
            raise ConfigError(f"{stage}.mixture: weights must be >= 0 and at least one task given")
        _check_opening(stage, stage_cfg)
    if cfg.vision.stem == "conv" and (cfg.vision.arch != "vit" or cfg.vision.checkpoint):
        raise ConfigError("vision.stem: 'conv' is for a ViT tower that stage 0 trains (vision.arch 'vit', "
                          "no vision.checkpoint)")
    if cfg.world.image_size_high < cfg.world.image_size_low:
        raise ConfigError("world.image_size_high must be >= world.image_size_low")
    if cfg.model.resampler.locality < 0:
        raise ConfigError(f"model.resampler.locality: {cfg.model.resampler.locality} must be >= 0 (0: no prior)")


def dotted_overrides(items: list[str]) -> dict:
    """``["a.b=1", ...]`` (command-line ``--set``) -> nested overrides for :func:`load`, values parsed as YAML.

    Each path edits one key (:class:`KeyEdits`): ``instruct.mixture.vqa_ocr=12`` keeps the other
    weights; ``instruct.mixture={vqa_ocr: 1}`` gives a whole new mixture."""
    out: dict = KeyEdits()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, KeyEdits())
        node[leaf] = yaml.safe_load(value)
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def variant_path(params: str | Path, variant: str) -> Path:
    """Variants live in ``variants/`` beside the scale file."""
    return Path(params).parent / "variants" / f"{variant}.yaml"


def _variant_overrides(vpath: Path, seen: tuple[str, ...] = ()) -> dict:
    """A variant's overrides; ``extends: other`` merges the other variant's overrides first."""
    data = read_yaml(vpath)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if parent in seen or parent == vpath.stem:
        raise ConfigError(f"{vpath}: 'extends' forms a cycle through {parent!r}")
    ppath = vpath.parent / f"{parent}.yaml"
    if not ppath.is_file():
        raise ConfigError(f"{vpath}: extends unknown variant {parent!r} (no {ppath})")
    return deep_merge(_variant_overrides(ppath, (*seen, vpath.stem)), data)


def load(params: str | Path, variant: str = "ours", seed: int | None = None, **overrides: Any) -> Config:
    """Merge the scale file, the variant override and keyword overrides; validate; return a Config."""
    params = resolve(params)
    data = read_yaml(params)
    vpath = variant_path(params, variant)
    if not vpath.is_file():
        known = sorted(p.stem for p in vpath.parent.glob("*.yaml"))
        raise ConfigError(f"variant {variant!r}: no file {vpath} (known variants: {', '.join(known)})")
    data = deep_merge(data, _variant_overrides(vpath))
    data = deep_merge(data, overrides)
    data = _resolve_mixture_refs(data)
    data["variant"] = variant
    if seed is not None:
        data["seed"] = seed
    try:
        cfg = from_dict(Config, data)
    except ConfigError as err:
        raise ConfigError(f"{params} + {vpath.name}: {err}") from None
    validate(cfg)
    return cfg


def _resolve_mixture_refs(data: dict) -> dict:
    """Fill ``mixture`` of every stage that names ``mixture_from`` (read before any stage is changed)."""
    instruct_mixture = (data.get("instruct") or {}).get("mixture")
    if not isinstance(instruct_mixture, dict):
        return data  # from_dict names the bad or missing instruct.mixture
    resolved = dict(data)
    for stage in TRAINING_STAGES:
        section = data.get(stage)
        if not isinstance(section, dict) or not section.get("mixture_from"):
            continue
        if section["mixture_from"] != "instruct_multimodal":
            raise ConfigError(f"{stage}.mixture_from: {section['mixture_from']!r} is not one of "
                              f"{STAGE_CHOICES['mixture_from']}")
        mixture = {task: w for task, w in instruct_mixture.items() if task not in TEXT_ONLY_TASKS}
        resolved[stage] = {**section, "mixture": mixture}
    return resolved


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def config_hash(section: Any) -> str:
    """A short stable hash of a config (or any json-able part of it) for run reuse and cache keys."""
    payload = json.dumps(section if isinstance(section, dict) else to_dict(section), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
