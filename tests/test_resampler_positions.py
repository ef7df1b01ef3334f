"""The resampler's optional 2-D position code on the media (``model.resampler.media_pos``)."""
import dataclasses

import pytest
import torch

from lynxlib.config import ConfigError, ResamplerConfig, load
from lynxlib.resampler import PerceiverResampler, sincos_2d
from lynxlib.stages import _sections, stage_key

CFG = ResamplerConfig(num_latents=8, depth=2, heads=2, dim_head=8, ff_mult=1)


def test_sincos_code_names_row_and_column():
    code = sincos_2d(4, 16)  # (16 patches, 16 channels), row-major
    assert code.shape == (16, 16)
    assert torch.equal(code[0, :8], code[3, :8]) and not torch.equal(code[0, 8:], code[3, 8:])  # same row
    assert torch.equal(code[1, 8:], code[13, 8:]) and not torch.equal(code[1, :8], code[13, :8])  # same column
    assert len({tuple(row.tolist()) for row in code}) == 16
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(4, 18)


def test_the_code_starts_closed_and_makes_the_bridge_see_where_tokens_are():
    """A plain resampler is blind to the order of the media tokens; with the code (gate opened) a
    permutation of the patches changes its output. At init the gate is 0: the plain bridge exactly."""
    torch.manual_seed(0)
    plain = PerceiverResampler(dim=16, dim_media=16, cfg=CFG)
    coded = PerceiverResampler(dim=16, dim_media=16, cfg=dataclasses.replace(CFG, media_pos="sincos"))
    assert set(coded.state_dict()) - set(plain.state_dict()) == {"media_pos_gate"}
    coded.load_state_dict({**plain.state_dict(), "media_pos_gate": torch.zeros(1)})
    media = torch.randn(2, 2 * (1 + 16), 16)  # 2 frames of a class token + 4 x 4 patches
    shuffled = media.clone()
    shuffled[:, 1:17] = media[:, 1:17].flip(1)  # the first frame's patches in reverse order
    assert torch.equal(coded(media, frames=2), plain(media, frames=2))
    assert torch.allclose(plain(media, frames=2), plain(shuffled, frames=2), atol=1e-5)
    with torch.no_grad():
        coded.media_pos_gate.fill_(1.0)
    assert not torch.allclose(coded(media, frames=2), coded(shuffled, frames=2), atol=1e-3)
    out = coded(media, frames=2)
    out.sum().backward()
    assert coded.media_pos_gate.grad is not None and coded.media_pos_gate.grad.abs() > 0
    with pytest.raises(ValueError, match="do not split into 3 frames"):
        coded(media, frames=3)


def test_media_pos_is_validated_and_leaves_existing_stage_keys_alone():
    base = load("params/smoke.yaml", "ours")
    assert base.model.resampler.media_pos == "none"
    coded = load("params/smoke.yaml", "ours", model={"resampler": {"media_pos": "sincos"}})
    assert stage_key(coded, "pretrain_low") != stage_key(base, "pretrain_low")
    assert stage_key(coded, "backbones") == stage_key(base, "backbones")
    # at "none" the key is left out of the hashed sections: artifacts trained before it existed keep theirs
    assert "media_pos" not in _sections(base, "instruct")["model"]["resampler"]
    assert _sections(coded, "instruct")["model"]["resampler"]["media_pos"] == "sincos"
    with pytest.raises(ConfigError, match="model.resampler.media_pos: 'rowcol' is not one of"):
        load("params/smoke.yaml", "ours", model={"resampler": {"media_pos": "rowcol"}})
