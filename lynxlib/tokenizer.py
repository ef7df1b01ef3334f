"""Stage 0 tokenizer: a byte-level BPE trained on the world's text, in the standard HF format.

The result is a ``PreTrainedTokenizerFast`` saved with ``save_pretrained`` and reloaded with
``AutoTokenizer.from_pretrained(path)``, exactly as a user loads Vicuna's tokenizer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
IMAGE = "<image>"  # placeholder the prefix-tuning model replaces with vision tokens
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, IMAGE)


def train_tokenizer(texts: Iterable[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts``; BOS is prepended by the post-processor, like LLaMA's."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[IMAGE],
        padding_side="left",  # generation pads on the left; the collator sets sides explicitly
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer by path or hub id (offline runs need a local path) and check it has ``<image>``."""
    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:  # LLaMA's tokenizer ships without one; the paper adds it (vocab 32000 + 1)
        tok.add_special_tokens({"pad_token": PAD})
    if IMAGE not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [IMAGE]})
    return tok


def image_token_id(tok: PreTrainedTokenizerBase) -> int:
    return tok.convert_tokens_to_ids(IMAGE)
