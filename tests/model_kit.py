"""Shared by the model tests: a toy tokenizer, smoke configs, random-init backbones, a LynxModel with its
adapters and gates woken up, prompt and batch builders (the fixtures over them: conftest.py)."""
import copy
import random

import torch

from lynxlib.build import build_lm, build_model
from lynxlib.config import load
from lynxlib.data import PromptFormatter, pad_batch
from lynxlib.tokenizer import train_tokenizer
from lynxlib.vision import create_clip

WORDS = ("a the red blue green yellow circle square triangle star left right of above below is there "
         "how many what colour shape beach forest kitchen street one two three big small near").split()


def toy_tokenizer(vocab_size: int = 512):
    rnd = random.Random(0)
    texts = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 12))) for _ in range(400)]
    return train_tokenizer(texts, vocab_size=vocab_size)


def smoke(variant: str = "ours", **overrides):
    return load("params/smoke.yaml", variant, **overrides)


def backbones(cfg, tok, seed: int = 0):
    """A random-init LM and CLIP at the config's shapes (what stage 0 would hand over)."""
    torch.manual_seed(seed)
    lm = build_lm(cfg.lm, vocab_size=len(tok), pad_id=tok.pad_token_id, bos_id=tok.bos_token_id,
                  eos_id=tok.eos_token_id)
    return lm, create_clip(cfg, vocab_size=len(tok))


def make_model(cfg, tok, *, seed: int = 0, parts=None, wake: bool = True):
    """LynxModel in eval mode; ``wake`` makes adapters and gates non-zero so they matter."""
    lm, clip = parts if parts is not None else backbones(cfg, tok, seed)
    torch.manual_seed(seed + 1)
    model = build_model(cfg, tokenizer=tok, lm=copy.deepcopy(lm), clip_visual_or_tower=copy.deepcopy(clip)).eval()
    return wake_up(model) if wake else model


def wake_up(model):
    """Gates to 0.7 and random adapter up-projections: at init both are zero, so the image would not matter."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.fill_(0.7)
            elif ".adapter.up." in name:
                p.normal_(0, 0.2)
    return model


def prompts(model, tok, questions, *, visual=True):
    fmt = PromptFormatter(tokenizer=tok, template="User: {question}\nBot:", num_image_tokens=model.num_image_tokens,
                          max_len=96)
    return [fmt.encode_prompt([(q, "")], has_visual=visual) for q in questions]


def train_batch(model, tok, turns, *, visual):
    fmt = PromptFormatter(tokenizer=tok, template="User: {question}\nBot:", num_image_tokens=model.num_image_tokens,
                          max_len=96)
    rows = [fmt.encode([t], has_visual=v) for t, v in zip(turns, visual)]
    return pad_batch(rows, pad_id=tok.pad_token_id, side="right")


QUESTIONS = ["what colour is the circle", "how many", "is there a red square left of the blue triangle"]
TURNS = [("what colour is the circle", "red"), ("how many", "three stars"), ("where is it", "on the beach")]
