"""Test-wide settings: offline, single-threaded, deterministic."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def smoke_cfg():
    from lynxlib.config import load

    return load("params/smoke.yaml", "ours")


# The model tests' toy tokenizer, smoke config and random-init backbones (helpers: tests/model_kit.py),
# built once per module.
@pytest.fixture(scope="module")
def tok():
    from model_kit import toy_tokenizer

    return toy_tokenizer()


@pytest.fixture(scope="module")
def cfg():
    from model_kit import smoke

    return smoke()


@pytest.fixture(scope="module")
def parts(cfg, tok):
    from model_kit import backbones

    return backbones(cfg, tok)
