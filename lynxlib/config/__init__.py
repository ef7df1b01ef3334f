"""Typed configuration: one dataclass per component, loaded from a scale file plus a variant override.

``load("params/tiny.yaml", "noisy_data")`` reads the scale file, deep-merges
``params/variants/noisy_data.yaml`` over it, and builds a :class:`Config`. Every key is checked
against the dataclasses: an unknown key raises :class:`ConfigError` naming the file, the dotted key
and the nearest valid key; a value of the wrong type names the expected type.

``schema``: the dataclasses and value choices. ``loading``: merge, check, resolve, hash.
"""
from lynxlib.config.loading import (ConfigError, config_hash, deep_merge, dotted_overrides, dump, from_dict, load,
                                   read_yaml, to_dict, validate, variant_path)
from lynxlib.config.schema import (CHOICES, STAGE_CHOICES, TRAINING_STAGES, TEXT_ONLY_TASKS, TRAINABLE_GROUPS,
                                   AdapterConfig, BackbonesConfig, Config, DataConfig, EvalConfig,
                                   GenerationConfig, LMConfig, ModelConfig, ResamplerConfig, StageConfig,
                                   StudyConfig, TokenizerConfig, VisionConfig, WorldConfig, XAttnConfig,
                                   stage_identity, without_later_keys)

__all__ = ["CHOICES", "STAGE_CHOICES", "TRAINING_STAGES", "TEXT_ONLY_TASKS", "TRAINABLE_GROUPS", "AdapterConfig",
           "BackbonesConfig", "Config", "ConfigError", "DataConfig", "EvalConfig", "GenerationConfig", "LMConfig",
           "ModelConfig", "ResamplerConfig", "StageConfig", "StudyConfig", "TokenizerConfig", "VisionConfig",
           "WorldConfig", "XAttnConfig", "config_hash", "deep_merge", "dotted_overrides", "dump", "from_dict", "load", "read_yaml",
           "stage_identity", "to_dict", "validate", "variant_path",
           "without_later_keys"]
