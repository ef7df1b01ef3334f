"""The instruction-aware bridge (model.resampler.sees_instruction, the `instruction_aware` control): the
visual tokens depend on the question, never on the answer or the padding, and the plain bridge is untouched."""
import pytest
import torch

from lynxlib.config import ResamplerConfig
from lynxlib.resampler import PerceiverResampler
from lynxlib.stages import stage_key
from model_kit import make_model, smoke, train_batch


def visual_tokens(model, batch, pixel_values) -> torch.Tensor:
    """The embeddings at the <image> positions, as training conditions them (the answer is not the instruction)."""
    prompt = batch["attention_mask"].bool() & (batch["labels"] == -100)
    with torch.no_grad():
        cond = model.condition(input_ids=batch["input_ids"], pixel_values=pixel_values, instruction_mask=prompt)
    return cond.inputs_embeds[batch["input_ids"] == model.image_token_id]


@pytest.fixture(scope="module")
def aware(tok, parts):
    return make_model(smoke("instruction_aware"), tok, parts=parts)


def test_visual_tokens_follow_the_question_not_the_answer_or_padding(tok, aware):
    px = torch.randn(1, 1, 3, 64, 64)
    base = visual_tokens(aware, train_batch(aware, tok, [("what colour is the circle", "red")], visual=[True]), px)
    other_answer = train_batch(aware, tok, [("what colour is the circle", "blue square")], visual=[True])
    # equal up to float rounding: a masked key still changes the softmax's summation order
    torch.testing.assert_close(base, visual_tokens(aware, other_answer, px), rtol=0, atol=1e-5)
    padded = train_batch(aware, tok, [("what colour is the circle", "red"), ("how many stars are there left of "
                                       "the big blue square", "three")], visual=[True, True])
    both = visual_tokens(aware, padded, px.expand(2, -1, -1, -1, -1))
    torch.testing.assert_close(both[: len(base)], base, rtol=0, atol=1e-5)  # row 0 is right-padded: its pads are not instruction
    other_question = train_batch(aware, tok, [("what colour is the square", "red")], visual=[True])
    assert (base - visual_tokens(aware, other_question, px)).abs().max() > 1e-2


def test_the_plain_bridge_ignores_the_question(tok, parts):
    plain = make_model(smoke(), tok, parts=parts)
    px = torch.randn(1, 1, 3, 64, 64)
    a = visual_tokens(plain, train_batch(plain, tok, [("what colour is the circle", "red")], visual=[True]), px)
    b = visual_tokens(plain, train_batch(plain, tok, [("how many stars", "two")], visual=[True]), px)
    assert torch.equal(a, b)


def test_the_instruction_keys_exist_only_when_asked_and_train_with_the_resampler(tok, parts, aware):
    plain = make_model(smoke(), tok, parts=parts)
    extra = set(aware.resampler.state_dict()) - set(plain.resampler.state_dict())
    depth = len(aware.resampler.layers)
    assert extra and all(".norm_text." in k or ".to_kv_text." in k for k in extra) and len(extra) == 3 * depth
    assert set(plain.resampler.state_dict()) <= set(aware.resampler.state_dict())
    assert all(p.requires_grad for n, p in aware.resampler.named_parameters() if "_text" in n)


def test_a_plain_resampler_refuses_instruction_tokens():
    torch.manual_seed(0)
    res = PerceiverResampler(dim=16, dim_media=12, cfg=ResamplerConfig(num_latents=4, depth=1, heads=2, dim_head=8))
    media, text = torch.randn(2, 5, 12), torch.randn(2, 3, 16)
    with pytest.raises(ValueError, match="sees_instruction"):
        res(media, text=text, text_mask=torch.ones(2, 3, dtype=torch.bool))


def test_off_keeps_every_stage_key_and_on_changes_the_trained_ones():
    base, aware = smoke(), smoke("instruction_aware")
    assert stage_key(base, "backbones") == stage_key(aware, "backbones")
    for stage in ("pretrain_low", "instruct", "eval"):
        assert stage_key(base, stage) != stage_key(aware, stage)
