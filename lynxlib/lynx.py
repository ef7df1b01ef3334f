"""LynxModel: frozen vision tower -> frame embedding -> Perceiver resampler -> a (frozen) decoder LM.

Three ways to join vision and text (``ModelConfig``):

* ``fusion="prefix"`` (PT, Lynx): the resampler's Q tokens replace the Q ``<image>`` placeholders of
  ``input_ids`` in ``inputs_embeds``. The image sits where the prompt template puts it (the collator,
  :class:`lynxlib.data.PromptFormatter`, writes exactly ``num_image_tokens`` = Q placeholders right
  after BOS); a row with any other non-zero count is an error. Adapters follow every M-th block.
* ``fusion="cross_attn"`` (CA, Flamingo): no placeholders; the Q tokens reach the LM through gated
  cross-attention layers (:mod:`lynxlib.xattn`).
* ``blind=True``: a text-only control. No tower, no resampler; images in a batch are ignored and
  placeholders are an error (the collator must write ``num_image_tokens`` = 0).

Vision inputs, per batch (frames must agree within a batch: image batches F = 1, video batches F = 5;
the data pipeline draws one visual kind per micro-batch):

* ``pixel_values`` (B, F, 3, H, W) (or (B, 3, H, W) for images), CLIP-normalised; or
* ``vision_tokens`` (B, F, N, Dv) (or (B, N, Dv)): the tower's per-frame tokens from a feature cache,
  *before* the frame-position embedding (which is trainable). Cache ``model.tower.encode_frames``.

Text-only samples may share a batch with visual ones: their rows carry no placeholders (PT) or
``has_visual`` False (CA). The vision tensor then has either B rows (text-only rows are ignored,
e.g. zeros) or exactly one row per visual sample, in batch order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lynxlib.adapters import insert_adapters
from lynxlib.config import GenerationConfig, ModelConfig
from lynxlib.resampler import PerceiverResampler
from lynxlib.vision import FramePosition, VisionTower
from lynxlib.xattn import conditioned, insert_cross_attention


@dataclass
class LynxOutput:
    loss: torch.Tensor | None  # mean next-token CE over labels != -100 (None without labels)
    logits: torch.Tensor       # (B, T, V)


@dataclass
class Conditioning:
    """What the LM receives besides the attention mask: embeddings and (CA) the vision context."""

    inputs_embeds: torch.Tensor          # (B, T, D)
    context: torch.Tensor | None = None  # (B, Q, D), CA only
    visual_mask: torch.Tensor | None = None  # (B,) bool, CA only


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T): 0, 1, ... over the real tokens, whichever side is padded (as ``generate`` does)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def as_frames(x: torch.Tensor | None, image_ndim: int) -> torch.Tensor | None:
    """Add the frame axis to a single-image tensor: (B, 3, H, W) -> (B, 1, 3, H, W), (B, N, Dv) -> (B, 1, N, Dv)."""
    return x.unsqueeze(1) if x is not None and x.ndim == image_ndim else x


class LynxModel(nn.Module):
    """tower (frozen) + frame_pos + resampler + LM (with adapters / cross-attention), see module doc."""

    def __init__(self, *, lm: nn.Module, tower: VisionTower | None, cfg: ModelConfig, image_token_id: int,
                 num_frames: int, generation: GenerationConfig | None = None):
        super().__init__()
        self.fusion, self.blind = cfg.fusion, cfg.blind
        self.image_token_id = image_token_id
        self.generation = generation or GenerationConfig()
        self.lm = lm
        dim = lm.config.hidden_size
        if self.blind:
            self.tower = self.frame_pos = self.resampler = None
        else:
            if tower is None:
                raise ValueError("a model that sees images needs a vision tower (blind=False)")
            self.tower = tower
            self.frame_pos = FramePosition(num_frames=num_frames, dim=tower.width)
            self.resampler = PerceiverResampler(dim=dim, dim_media=tower.width, cfg=cfg.resampler)
        self.adapter_layers = insert_adapters(lm, cfg.adapter) if cfg.adapters else []
        uses_xattn = cfg.fusion == "cross_attn" and not self.blind
        self.xattn_layers = insert_cross_attention(lm, cfg.xattn) if uses_xattn else []

    @property
    def num_image_tokens(self) -> int:
        """``<image>`` placeholders the collator must write per visual sample (Q for PT, else 0)."""
        return self.resampler.num_latents if self.fusion == "prefix" and not self.blind else 0

    def set_resolution(self, size: int) -> None:
        if self.tower is not None:
            self.tower.set_resolution(size)

    # -- vision
    def encode_vision(self, *, pixel_values=None, vision_tokens=None, text=None, text_mask=None) -> torch.Tensor:
        """pixel_values (B, F, 3, H, W) or vision_tokens (B, F, N, Dv) [+ the instruction's embeddings
        text (B, T, D) and text_mask (B, T) for an instruction-aware resampler] -> (B, Q, D)"""
        tokens = as_frames(vision_tokens, 3)
        if tokens is None:
            if pixel_values is None:
                raise ValueError("visual samples need pixel_values or vision_tokens")
            tokens = self.tower.encode_frames(as_frames(pixel_values, 4))
        tokens = tokens.to(self.resampler.latents.dtype)  # a bf16 tower feeding an fp32 resampler
        return self.resampler(self.frame_pos(tokens), frames=tokens.shape[1], text=text, text_mask=text_mask)

    def _visual_rows(self, media_in: torch.Tensor | None, has: torch.Tensor, text: torch.Tensor,
                     text_mask: torch.Tensor | None, **vision) -> torch.Tensor | None:
        """The resampled tokens of the visual rows only: (n_visual, Q, D), or None if there are none.
        ``text`` (B, T, D) and ``text_mask`` (B, T): every row's token embeddings and which are the instruction."""
        n = int(has.sum())
        if n == 0:
            return None
        if media_in is None:
            raise ValueError(f"{n} samples are marked visual but neither pixel_values nor vision_tokens was given")
        if media_in.shape[0] == has.shape[0]:
            vision = {k: v[has] if v is not None else None for k, v in vision.items()}
        elif media_in.shape[0] != n:
            raise ValueError(f"vision input has {media_in.shape[0]} rows for a batch of {has.shape[0]} "
                             f"with {n} visual samples: give one row per sample or one per visual sample")
        if text_mask is None:
            return self.encode_vision(**vision)
        return self.encode_vision(**vision, text=text[has], text_mask=text_mask[has])

    # -- conditioning
    def _check_has_visual(self, has: torch.Tensor, has_visual: torch.Tensor | None) -> torch.Tensor:
        if has_visual is not None and not torch.equal(has_visual.bool().cpu(), has.cpu()):
            raise ValueError(f"has_visual {has_visual.tolist()} disagrees with the <image> placeholders "
                             f"{has.tolist()} (rows with Q placeholders are the visual ones)")
        return has

    def _placeholders(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) bool mask of ``<image>`` positions, checked against the model's fusion."""
        mask = input_ids == self.image_token_id
        counts = mask.sum(dim=1)
        want = self.num_image_tokens
        bad = [(i, int(c)) for i, c in enumerate(counts.tolist()) if c not in (0, want)]
        if want == 0 and counts.any():
            kind = "blind" if self.blind else self.fusion
            raise ValueError(f"a {kind} model takes no <image> placeholders; rows {counts.nonzero().flatten().tolist()} "
                             "have some (build prompts with num_image_tokens=model.num_image_tokens = 0)")
        if bad:
            raise ValueError(f"each visual sample needs exactly {want} <image> placeholders (the resampler's "
                             f"num_latents); (row, count): {bad}")
        return mask

    def condition(self, *, input_ids, pixel_values=None, vision_tokens=None, has_visual=None,
                  instruction_mask=None) -> Conditioning:
        """Token ids (B, T) + vision -> :class:`Conditioning` (embeddings (B, T, D), CA context (B, Q, D)).
        ``instruction_mask`` (B, T) bool: the prompt's tokens, which an instruction-aware resampler sees."""
        image_mask = self._placeholders(input_ids)
        # placeholders never reach the embedding table: the <image> id may lie beyond the LM's vocabulary
        embeds = self.lm.get_input_embeddings()(input_ids.masked_fill(image_mask, 0))
        media_in = vision_tokens if vision_tokens is not None else pixel_values
        sees = instruction_mask is not None and self.resampler is not None and self.resampler.sees_instruction
        text_mask = instruction_mask & ~image_mask if sees else None
        vision = {"pixel_values": pixel_values, "vision_tokens": vision_tokens, "text": embeds, "text_mask": text_mask}
        if self.blind:
            return Conditioning(embeds)
        if self.fusion == "prefix":
            has = self._check_has_visual(image_mask.any(dim=1), has_visual)
            media = self._visual_rows(media_in, has, **vision)
            if media is not None:  # row-major order of the mask = batch order of the visual rows
                embeds = embeds.masked_scatter(image_mask[..., None], media.to(embeds.dtype))
            return Conditioning(embeds)
        has = has_visual.bool() if has_visual is not None else torch.full_like(input_ids[:, 0], media_in is not None,
                                                                                dtype=torch.bool)
        media = self._visual_rows(media_in, has, **vision)
        if media is None:
            return Conditioning(embeds)
        context = media.new_zeros(input_ids.shape[0], *media.shape[1:]).index_put((has.nonzero().flatten(),), media)
        return Conditioning(embeds, context.to(embeds.dtype), has)

    # -- LM
    def forward(self, *, input_ids, attention_mask, labels=None, pixel_values=None, vision_tokens=None,
                has_visual=None) -> LynxOutput:
        """input_ids/attention_mask/labels (B, T), pixel_values (B, F, 3, H, W) | vision_tokens (B, F, N, Dv),
        has_visual (B,) -> LynxOutput(loss, logits (B, T, V)); labels -100 are ignored, shifted inside."""
        prompt = attention_mask.bool() & (labels == -100 if labels is not None else True)  # never the answer
        cond = self.condition(input_ids=input_ids, pixel_values=pixel_values, vision_tokens=vision_tokens,
                              has_visual=has_visual, instruction_mask=prompt)
        with conditioned(self.lm, vision_tokens=cond.context, visual_mask=cond.visual_mask):
            out = self.lm(inputs_embeds=cond.inputs_embeds, attention_mask=attention_mask,
                          position_ids=position_ids_from_mask(attention_mask), labels=labels, use_cache=False)
        return LynxOutput(loss=out.loss, logits=out.logits)

    def generation_kwargs(self, **overrides) -> dict:
        """Defaults for ``generate``: ``self.generation`` (greedy unless num_beams > 1), the LM's special ids."""
        cfg = self.lm.config
        kwargs = {"max_new_tokens": self.generation.max_new_tokens, "num_beams": self.generation.num_beams,
                  "do_sample": False, "pad_token_id": cfg.pad_token_id, "eos_token_id": cfg.eos_token_id,
                  "bos_token_id": cfg.bos_token_id}
        return kwargs | overrides

    @torch.no_grad()
    def generate(self, *, input_ids, attention_mask, pixel_values=None, vision_tokens=None, has_visual=None,
                 **gen_kwargs) -> torch.LongTensor:
        """Left-padded prompts (B, T) + vision -> new tokens only (B * num_return_sequences, <= max_new_tokens).

        KV-cached through ``lm.generate(inputs_embeds=...)``; finished rows are padded with pad_token_id.
        Released Lynx settings: ``num_beams=5, max_new_tokens=64`` (``params/paper.yaml`` generation).
        """
        if not bool(attention_mask[:, -1].all()):
            raise ValueError("generate needs left-padded prompts: every row must end with a real token")
        cond = self.condition(input_ids=input_ids, pixel_values=pixel_values, vision_tokens=vision_tokens,
                              has_visual=has_visual, instruction_mask=attention_mask.bool())
        with conditioned(self.lm, vision_tokens=cond.context, visual_mask=cond.visual_mask):
            return self.lm.generate(inputs_embeds=cond.inputs_embeds, attention_mask=attention_mask,
                                    **self.generation_kwargs(**gen_kwargs))
