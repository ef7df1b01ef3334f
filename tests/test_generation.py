"""Batched, left-padded, KV-cached generation: equal to per-sample decoding and to full forwards."""
import pytest
import torch

from lynxlib.data import Encoded, pad_batch, pad_prompts
from model_kit import QUESTIONS, make_model, prompts, smoke


def _strip(row: list[int], pad: int) -> list[int]:
    while row and row[-1] == pad:
        row = row[:-1]
    return row


@pytest.mark.parametrize("variant", ["ours", "cross_attn", "instruction_aware"])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_batched_generation_equals_per_sample(tok, parts, variant, num_beams):
    """Left-padded prompts of mixed lengths, one of them text-only (LLaVA issue #754 was this bug)."""
    model = make_model(smoke(variant), tok, parts=parts)
    with torch.no_grad():  # a loud pad embedding: any attention to padding would show in the outputs
        model.lm.get_input_embeddings().weight[tok.pad_token_id].normal_(0, 3)
    visual = [True, False, True]
    rows = [prompts(model, tok, [q], visual=v)[0] for q, v in zip(QUESTIONS, visual)]
    assert len({len(r) for r in rows}) == 3, "prompts of different lengths: left padding is exercised"
    px, has = torch.randn(3, 1, 3, 64, 64), torch.tensor(visual)
    batch = pad_prompts(rows, pad_id=tok.pad_token_id)
    out = model.generate(**batch, pixel_values=px, has_visual=has, max_new_tokens=10, num_beams=num_beams)
    assert out.shape[0] == 3 and out.shape[1] <= 10
    pad = tok.pad_token_id
    for i, row in enumerate(rows):
        alone = model.generate(**pad_prompts([row], pad_id=pad), pixel_values=px[i: i + 1] if visual[i] else None,
                               has_visual=has[i: i + 1], max_new_tokens=10, num_beams=num_beams)
        assert _strip(out[i].tolist(), pad) == _strip(alone[0].tolist(), pad), (variant, num_beams, i)


def test_generate_continues_forward_with_cache(tok, parts):
    """Greedy decoding with the KV cache = argmax of full forwards (positions respect left padding)."""
    model = make_model(smoke(), tok, parts=parts)
    batch = pad_prompts(prompts(model, tok, QUESTIONS), pad_id=tok.pad_token_id)
    px = torch.randn(3, 1, 3, 64, 64)
    out = model.generate(**batch, pixel_values=px, max_new_tokens=4, eos_token_id=None)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    for step in range(4):
        with torch.no_grad():
            nxt = model(input_ids=ids, attention_mask=mask, pixel_values=px).logits[:, -1].argmax(-1)
        assert torch.equal(nxt, out[:, step])
        ids, mask = torch.cat([ids, nxt[:, None]], 1), torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    with pytest.raises(ValueError, match="left-padded"):
        right = pad_batch([Encoded(r, r) for r in prompts(model, tok, QUESTIONS)], pad_id=0, side="right")
        model.generate(input_ids=right["input_ids"], attention_mask=right["attention_mask"], pixel_values=px)
