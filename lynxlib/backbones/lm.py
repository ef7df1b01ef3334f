"""Stage 0, language side: the BPE tokenizer, the base LM ("LLaMA") and its instruction-tuned copy ("Vicuna").

* ``pretrain_lm``: next-token prediction on the world's text corpus, packed into fixed windows
  (sentences joined as ``<s> sentence </s>``), like LLaMA's pretraining.
* ``instruct_lm``: the same weights fine-tuned on the world's text instructions in the chat template
  (``GenerationConfig.template``), loss on the responses only, like Vicuna's fine-tuning of LLaMA.
  Sequences are built by :class:`lynxlib.data.PromptFormatter`, the formatter stages 1 and 2 use.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from lynxlib.backbones.common import adamw, rng, torch_seed, warmup_cosine
from lynxlib.runs import show_progress
from lynxlib.config import Config
from lynxlib.data import PromptFormatter, pad_batch


HELDOUT_LM = 0.05  # share of the world's text corpus held out for the perplexity gate (at most 1000 lines)


def world_texts(world) -> dict[str, list]:
    """The world's text: ``corpus`` (LM training lines), ``heldout`` (lines of the corpus's last 5%
    that never occur in the training part: the templated corpus repeats short facts, and a repeated
    line would measure memory, not language) and ``instructions`` (the text instruction Samples)."""
    corpus = [line for line in world.corpus() if line.strip()]
    held = min(1000, max(1, int(len(corpus) * HELDOUT_LM)))
    train, tail = corpus[:-held], corpus[-held:]
    seen = set(train)
    return {"corpus": train, "heldout": [x for x in tail if x not in seen] or tail,
            "instructions": list(world.text_instructions())}


def encode_texts(tok, texts: Sequence[str]) -> list[list[int]]:
    """``<s> text </s>`` ids per text (the tokenizer's post-processor adds BOS)."""
    ids = tok(list(texts), add_special_tokens=True)["input_ids"]
    return [row + [tok.eos_token_id] for row in ids]


def pack(rows: Sequence[Sequence[int]]) -> np.ndarray:
    """One token stream of all rows, for fixed-length pretraining windows."""
    return np.fromiter((t for row in rows for t in row), dtype=np.int64)


def build_base_lm(cfg: Config, tok) -> torch.nn.Module:
    """The LLaMA-architecture decoder at random init, shaped by ``cfg.lm``, sized to ``tok``."""
    from lynxlib.build import build_lm

    return build_lm(cfg.lm, vocab_size=len(tok), pad_id=tok.pad_token_id, bos_id=tok.bos_token_id,
                    eos_id=tok.eos_token_id)


def pretrain_lm(cfg: Config, tok, texts: Sequence[str], *, progress: bool = True
                ) -> tuple[torch.nn.Module, list[tuple[int, float]]]:
    """Pretrain a fresh LM on ``texts``; returns the model (eval mode) and its loss curve."""
    bb = cfg.backbones
    torch_seed(bb.seed, "lm")
    model = build_base_lm(cfg, tok)
    stream = pack(encode_texts(tok, texts))
    span = bb.lm_seq_len
    if len(stream) <= span + 1:
        raise ValueError(f"text corpus has {len(stream)} tokens, fewer than one window of {span}")
    draw = rng(bb.seed, "lm")
    opt = adamw(model, bb.lm_lr)
    sched = warmup_cosine(opt, bb.lm_steps)
    curve: list[tuple[int, float]] = []
    model.train()
    bar = tqdm(range(bb.lm_steps), desc="stage0 LM pretrain", disable=not show_progress(progress), mininterval=2)
    for step in bar:
        starts = draw.integers(0, len(stream) - span, size=bb.lm_batch_size)
        batch = torch.from_numpy(np.stack([stream[s: s + span] for s in starts]))
        loss = model(input_ids=batch, labels=batch).loss
        update(model, loss, opt, sched)
        curve.append((step, loss.item()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval(), curve


def update(model: torch.nn.Module, loss: torch.Tensor, opt, sched) -> None:
    """One optimizer step with gradient clipping at 1.0, then the schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()


def instruction_rows(cfg: Config, tok, samples: Sequence) -> list:
    """Encoded text instructions (``lynxlib.data.Encoded``): template, EOS after each answer, labels."""
    fmt = PromptFormatter(tokenizer=tok, template=cfg.generation.template, num_image_tokens=0,
                          max_len=cfg.lm.max_position_embeddings)
    return [fmt.encode(s.turns, has_visual=False) for s in samples]


def instruct_lm(cfg: Config, tok, base: torch.nn.Module, samples: Sequence, *, progress: bool = True
                ) -> tuple[torch.nn.Module, list[tuple[int, float]]]:
    """Fine-tune a copy of ``base`` on instruction ``samples`` (loss on responses only)."""
    bb = cfg.backbones
    torch_seed(bb.seed, "vicuna")
    model = copy.deepcopy(base).train()
    rows = instruction_rows(cfg, tok, samples)
    draw = rng(bb.seed, "vicuna")
    opt = adamw(model, bb.vicuna_lr)
    sched = warmup_cosine(opt, bb.vicuna_steps)
    curve: list[tuple[int, float]] = []
    bar = tqdm(range(bb.vicuna_steps), desc="stage0 LM instruct", disable=not show_progress(progress), mininterval=2)
    for step in bar:
        picks = draw.integers(0, len(rows), size=bb.lm_batch_size)
        batch = pad_batch([rows[i] for i in picks], pad_id=tok.pad_token_id, side="right")
        loss = model(**batch).loss
        update(model, loss, opt, sched)
        curve.append((step, loss.item()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval(), curve


def save_lm(model: torch.nn.Module, tok, path) -> None:
    """A standard transformers checkpoint folder (safetensors) with its tokenizer beside it."""
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
