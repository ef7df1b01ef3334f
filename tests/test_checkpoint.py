"""Checkpoints: exact round trip of weights, optimizer, schedule and RNG; atomic, pruned, NaN-proof."""
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "train_scripts"))
from tinytask import SyntheticSource, build_model  # noqa: E402

from lynxlib import checkpoint as ckpt  # noqa: E402


def trained(steps=3):
    """A model, optimizer and schedule a few steps into training (so Adam state is non-trivial)."""
    model = build_model(seed=0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    source = SyntheticSource()
    for step in range(steps):
        model(**source.batch(step, 0, 0, 1)).loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return model, opt, sched


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3)


def save(tmp_path, step, model, opt=None, sched=None, keep_last=0):
    return ckpt.save_checkpoint(out_dir=tmp_path, step=step, model=model, optimizer=opt, scheduler=sched,
                                config={"stage": {"lr": 0.01}, "seed": 0},
                                trainer_state={"losses": [1.0] * step, "elapsed": 1.5}, keep_last=keep_last)


def test_round_trip_restores_everything_exactly(tmp_path):
    model, opt, sched = trained()
    torch.manual_seed(123)
    path = save(tmp_path, 3, model, opt, sched)
    expected_draws = draws()
    expected_weights = {n: p.clone() for n, p in model.named_parameters()}
    expected_opt = opt.state_dict()

    model2, opt2, sched2 = trained(steps=1)  # different weights, Adam state and schedule
    draws()  # moves every RNG on
    state = ckpt.load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2)

    assert state.step == 3 and state.losses == [1.0] * 3 and state.config["seed"] == 0
    for name, param in model2.named_parameters():
        assert torch.equal(param, expected_weights[name]), name
    for key, value in opt2.state_dict()["state"].items():
        for field, tensor in value.items():
            assert torch.equal(tensor, expected_opt["state"][key][field])
    assert sched2.last_epoch == sched.last_epoch and sched2.get_last_lr() == sched.get_last_lr()
    again = draws()
    assert again[:2] == expected_draws[:2] and torch.equal(again[2], expected_draws[2])


def test_only_trainable_weights_are_saved(tmp_path):
    model, opt, sched = trained()
    path = save(tmp_path, 3, model, opt, sched)
    saved = load_file(path / "model.safetensors")
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(name.startswith("frozen.") for name in saved)
    assert {p.name for p in path.iterdir()} >= {"model.safetensors", "optimizer.pt", "scheduler.pt",
                                                "rng_rank0.pt", "config.json", "trainer_state.json"}


def test_latest_pointer_and_pruning(tmp_path):
    model, opt, sched = trained()
    for step in (2, 4, 6, 8):
        save(tmp_path, step, model, opt, sched, keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [6, 8]
    assert ckpt.find_latest(tmp_path).name == "step_000008"
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step_000008"


def test_a_save_killed_midway_leaves_the_last_checkpoint_usable(tmp_path, monkeypatch):
    model, opt, sched = trained()
    good = save(tmp_path, 2, model, opt, sched)

    def crash(path, tensors):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt  # stands in for the process dying mid-write

    monkeypatch.setattr(ckpt, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, 4, model, opt, sched)
    assert (tmp_path / "ckpt" / ".tmp_step_000004").is_dir()
    assert ckpt.find_latest(tmp_path) == good
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step_000002"
    ckpt.load_checkpoint(good, model=build_model(seed=1))  # still loads

    monkeypatch.undo()
    save(tmp_path, 4, model, opt, sched)  # the next save replaces the stale temp folder
    assert ckpt.find_latest(tmp_path).name == "step_000004"
    assert not (tmp_path / "ckpt" / ".tmp_step_000004").exists()
    (tmp_path / "ckpt" / ".tmp_step_000006").mkdir()
    ckpt.clean_tmp(tmp_path)
    assert not list((tmp_path / "ckpt").glob(".tmp*"))


def test_non_finite_weights_are_never_written(tmp_path):
    model, opt, sched = trained()
    good = save(tmp_path, 2, model, opt, sched)
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="fc1.weight"):
        save(tmp_path, 4, model, opt, sched)
    assert ckpt.find_latest(tmp_path) == good
    assert all(torch.isfinite(t).all() for t in load_file(good / "model.safetensors").values())


def test_weights_must_match_the_model(tmp_path):
    model, opt, sched = trained()
    path = save(tmp_path, 1, model, opt, sched)
    other = build_model()
    other.fc2.requires_grad_(False)
    other.frozen.requires_grad_(True)
    with pytest.raises(KeyError, match="frozen"):
        ckpt.load_weights(path / "model.safetensors", other)


def test_export_final_holds_the_trainable_weights_and_config(tmp_path):
    model, _, _ = trained()
    final = ckpt.export_final(out_dir=tmp_path, model=model, config={"seed": 0})
    assert json.loads((final / "config.json").read_text()) == {"seed": 0}
    fresh = build_model(seed=5)
    ckpt.load_weights(final / "model.safetensors", fresh)
    assert torch.equal(fresh.fc1.weight, model.fc1.weight)
