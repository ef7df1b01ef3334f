"""Stage 0, vision side: CLIP-pretrain the tiny open_clip tower (the EVA-CLIP analogue).

Images and clean captions of the world's training scenes, open_clip's own ``ClipLoss``, at BOTH world
resolutions: every ``tower_high_every``-th batch is at ``image_size_high`` with the position
embeddings bicubically interpolated from the checkpoint's low-resolution grid (differentiably, with
:func:`lynxlib.vision.interpolate_pos`, the function the frozen tower uses) -- rendered text is only
legible at high resolution.

The resampler reads the ``VisionConfig.feature_layer`` tokens, which a CLS-pooled ClipLoss trains
only indirectly, and a tiny text tower pooled at EOS barely tells captions apart that differ in one
word (measured: cosine 0.9997 between a caption and its shape-swapped twin after 300 steps). Two
training-only heads (not in the checkpoint) give those tokens direct signal from the caption's words:

* ``tower_word_loss``: the caption's words predicted from the mean-pooled tokens (soft-target
  cross-entropy over the vocabulary, as CatLIP trains on caption words);
* ``tower_ground_loss``: each object's words ("large red circle", 'sign "car"') predicted from the
  tokens of its grid cell (grounded captions, as GLIP/RegionCLIP pretrain with phrase-region pairs).

Measured on the tiny world (ViT width 128 x 4 blocks, batch 32, 25% high-res batches, 600 steps;
linear probe on the penultimate tokens of 512 held-out scenes; 64 / 128 px, majority in brackets):

==========================  =========  ===========  ===========  ===========  ===========
losses                      retrieval  colour [.12]  shape [.16]  count [.07]  place [.15]
==========================  =========  ===========  ===========  ===========  ===========
ClipLoss                    .20 / .18  .88 / .88    .21 / .18    .13 / .11    1.0 / 1.0
+ word + grounded heads     .10 / .07  1.0 / 1.0    .26 / .30    .14 / .14    1.0 / 1.0
==========================  =========  ===========  ===========  ===========  ===========

At 1200 steps (3000 scenes) the heads give shape .35 / .47 and retrieval .50 / .45 at low resolution
only, where ClipLoss alone (25% high-res) gave .17 / .19 and .39 / .36. A ClipLoss on mean-pooled tokens (``tower_token_loss``) and one-attribute-off
hard-negative captions (``tower_hard_negatives``, :mod:`lynxlib.backbones.hard_negatives`) gave no probe
gain at 300-1200 steps and cost retrieval; they stay available, off by default.

Words are legible only at high resolution, and the ViT needs 13,000-26,000 of them before it reads
one (``benchmarks/tower_words.py``): ``tower_high_words`` draws every high-resolution batch from the
scenes that carry a word, so ``tower_high_every: 2`` over 2,000 steps shows it 32,000.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from tqdm import tqdm

from lynxlib.backbones.attributes import AttributeHeads
from lynxlib.backbones.common import adamw, rng, torch_seed, warmup_cosine
from lynxlib.backbones.hard_negatives import caption_pairs, hard_negative_loss
from lynxlib.backbones.word_heads import PooledHead, grounded_items, word_targets
from lynxlib.runs import show_progress
from lynxlib.config import Config
from lynxlib.vision import interpolate_pos, to_pixel_values


# ------------------------------------------------------------------------------------ inputs
def world_pairs(cfg: Config, world) -> tuple[dict[int, np.ndarray], list[str], list]:
    """The world's training images at both resolutions ({size: (N, H, W, 3) uint8, memory-mapped}),
    one clean caption per image (it mentions every object, the group, the word and the place) and the
    scene graphs (for the grounded loss and hard negatives)."""
    pairs = world.captions("clean")
    index = np.array([i for i, _ in pairs])
    captions = [c for _, c in pairs]
    sizes = sorted({cfg.world.image_size_low, cfg.world.image_size_high})
    images = {s: world.images("train", s) for s in sizes}
    scenes = world.scenes("train")
    if not np.array_equal(index, np.arange(len(images[sizes[0]]))):  # not one caption per row, in order
        images = {s: np.asarray(a[index]) for s, a in images.items()}
        scenes = [scenes[i] for i in index]
    return images, captions, scenes


def text_tokens(tok, captions: Sequence[str], context_length: int) -> torch.Tensor:
    """Caption ids for the CLIP text tower: ``<s> caption </s>`` padded with ``<pad>``; a caption
    longer than the context is cut and still ends in EOS (the tower pools at EOS)."""
    out = torch.full((len(captions), context_length), tok.pad_token_id, dtype=torch.long)
    for i, ids in enumerate(tok(list(captions), add_special_tokens=True)["input_ids"]):
        ids = ids[: context_length - 1] + [tok.eos_token_id]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


# ------------------------------------------------------------------- differentiable forward
def feature_block(visual, feature_layer: int) -> int:
    """Index of the block whose output is the feature layer (-1 last, -2 penultimate)."""
    layers = len(visual.transformer.resblocks)
    return feature_layer % layers


def visual_forward(visual, x: torch.Tensor, feature_layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """open_clip ViT forward at any resolution: (pooled image embedding, feature-layer patch tokens).

    Same computation as ``VisionTransformer.forward`` with the position table interpolated to the
    input's grid; the tokens are the ``feature_layer`` block's output without the class token.
    """
    grid = x.shape[-1] // visual.patch_size[0]
    pos = visual.positional_embedding
    pos = pos if grid == visual.grid_size[0] else interpolate_pos(pos, grid)  # differentiable here
    h = visual.conv1(x).flatten(2).transpose(1, 2)
    h = torch.cat([visual.class_embedding.to(h.dtype).expand(h.shape[0], 1, -1), h], dim=1) + pos.to(h.dtype)
    h = visual.ln_pre(visual.patch_dropout(h))
    h, inter = visual.transformer.forward_intermediates(h, indices=[feature_block(visual, feature_layer)])
    pooled, _ = visual._pool(h)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled, inter[0][:, 1:]


def encode_text(clip, text: torch.Tensor) -> torch.Tensor:
    """``clip.encode_text(text, normalize=True)`` computed on the columns up to the last EOS only.

    The text tower is causal and pools at EOS, so the padding after it cannot change the result;
    captions fill about half of the 77-token context, so this halves the text tower's cost.
    """
    if getattr(clip, "text_pool_type", None) != "eos" or clip.attn_mask is None:
        return clip.encode_text(text, normalize=True)
    length = int((text == clip.text_eos_id).int().argmax(dim=-1).max()) + 1
    text = text[:, :length]
    x = clip.token_embedding(text) + clip.positional_embedding[:length]
    x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask[:length, :length]))
    x = x[torch.arange(len(text)), (text == clip.text_eos_id).int().argmax(dim=-1)]
    x = clip.text_projection(x) if isinstance(clip.text_projection, torch.nn.Linear) else x @ clip.text_projection
    return F.normalize(x, dim=-1)


def word_rows(scenes: Sequence) -> np.ndarray:
    """Rows of the scenes that carry a word: ``tower_high_words`` draws the high-resolution batches
    from them only. The conv-stem ViT reads the word after 13,000-26,000 legible word images
    (``benchmarks/tower_words.py``); a quarter of the batches at high resolution, half of them with a
    word, gives stage 0 about 4,700 in 1,200 steps (docs/calibration.md)."""
    return np.array([i for i, scene in enumerate(scenes) if scene.text is not None], dtype=np.int64)


# ------------------------------------------------------------------------------- training
@dataclass
class TowerObjective:
    """One stage-0 tower step's loss: ClipLoss on the pooled embedding, plus (each weighted from
    ``cfg.backbones``) ClipLoss on the pooled feature-layer tokens, hard negatives, the caption-word
    and grounded-word heads and the per-attribute heads. The heads are training-only (not in the
    checkpoint)."""

    cfg: Config
    clip: torch.nn.Module
    tok: object
    images: dict[int, np.ndarray]
    captions: Sequence[str]
    scenes: Sequence | None
    token_head: PooledHead
    word_head: PooledHead
    attributes: AttributeHeads | None
    clip_loss: ClipLoss = field(default_factory=ClipLoss)

    def parameters(self) -> torch.nn.ModuleList:
        """What the optimiser trains: the CLIP model and every head."""
        return torch.nn.ModuleList([self.clip, self.token_head, self.word_head]
                                   + ([self.attributes] if self.attributes is not None else []))

    def __call__(self, size: int, idx: np.ndarray, step: int, *, legible: bool) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss to minimise, the logged parts) for the scenes ``idx`` at ``size`` px."""
        bb, clip, tok, scenes = self.cfg.backbones, self.clip, self.tok, self.scenes
        special = [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id]
        x = to_pixel_values(self.images[size][idx])
        hard = bb.tower_hard_negatives > 0 and scenes is not None
        if hard:
            pos, neg = caption_pairs(self.cfg, scenes, idx, step)
            ids = text_tokens(tok, pos + neg, clip.context_length)
            both = encode_text(clip, ids)
            txt, neg_txt, ids = both[: len(idx)], both[len(idx):], ids[: len(idx)]
        else:
            ids = text_tokens(tok, [self.captions[i] for i in idx], clip.context_length)
            txt = encode_text(clip, ids)
        pooled, tokens = visual_forward(clip.visual, x, self.cfg.vision.feature_layer)  # (B, D), (B, P, W)
        scale = clip.logit_scale.exp()
        embs = [F.normalize(pooled, dim=-1)] + ([F.normalize(self.token_head(tokens), dim=-1)]
                                                if bb.tower_token_loss > 0 else [])
        losses = [self.clip_loss(e, txt, scale) for e in embs]
        hn = [hard_negative_loss(e, txt, neg_txt, scale) for e in embs] if hard else [x.new_zeros(())] * len(embs)
        main = losses[0]
        aux = losses[1] if len(losses) > 1 else main.detach() * 0
        loss = main + bb.tower_hard_negatives * hn[0]
        if len(embs) > 1:
            loss = loss + bb.tower_token_loss * (aux + bb.tower_hard_negatives * hn[1])
        word_loss = ground_loss = attr_loss = main.detach() * 0
        if bb.tower_word_loss > 0:
            target = word_targets(ids, len(tok), special)
            word_loss = -(target * F.log_softmax(self.word_head(tokens), dim=-1)).sum(-1).mean()
            loss = loss + bb.tower_word_loss * word_loss
        if bb.tower_ground_loss > 0 and scenes is not None:
            where, phrases = grounded_items(scenes, idx, x.shape[-1] // clip.visual.patch_size[0])
            cells = torch.stack([tokens[b, cols].mean(0) for b, cols in where])  # (objects, W)
            target = word_targets(tok(phrases, return_tensors="pt", padding=True)["input_ids"], len(tok), special)
            ground_loss = -(target * F.log_softmax(self.word_head(cells[:, None]), dim=-1)).sum(-1).mean()
            loss = loss + bb.tower_ground_loss * ground_loss
        if self.attributes is not None and scenes is not None:
            attr_loss = self.attributes(tokens, scenes, idx, legible=legible)
            loss = loss + bb.tower_attr_loss * attr_loss
        return loss, {"loss": main.item(), "token_loss": aux.item(), "hard_loss": hn[0].item(),
                      "word_loss": word_loss.item(), "ground_loss": ground_loss.item(), "attr_loss": attr_loss.item()}


def tower_objective(cfg: Config, clip, tok, images: dict[int, np.ndarray], captions: Sequence[str],
                    scenes: Sequence | None) -> TowerObjective:
    """The objective with fresh heads, built in a fixed order (the heads' init draws from torch's generator)."""
    width = clip.visual.conv1.out_channels
    embed_dim = clip.text_projection.shape[-1] if isinstance(clip.text_projection, torch.Tensor) \
        else clip.text_projection.out_features
    token_head, word_head = PooledHead(width, embed_dim), PooledHead(width, len(tok))
    # built only when on: its initialisation would move torch's generator for every tower after it
    attributes = AttributeHeads(width, max_count=cfg.world.max_count) if cfg.backbones.tower_attr_loss > 0 else None
    return TowerObjective(cfg, clip, tok, images, captions, scenes, token_head, word_head, attributes)


def batch_rows(cfg: Config, step: int, sizes: Sequence[int], n: int, worded: np.ndarray | None,
               draw: np.random.Generator) -> tuple[int, np.ndarray]:
    """(resolution, sorted scene rows) of tower step ``step``: every ``tower_high_every``-th batch at
    the highest size, drawn from the worded scenes when ``worded`` is given."""
    bb = cfg.backbones
    high = bb.tower_high_every > 0 and step % bb.tower_high_every == bb.tower_high_every - 1
    size = sizes[-1] if high else sizes[0]
    pool = worded if size == sizes[-1] and worded is not None and len(worded) else np.arange(n)
    return size, np.sort(draw.choice(pool, size=min(bb.tower_batch_size, len(pool)), replace=False))


def train_tower(cfg: Config, clip, tok, images: dict[int, np.ndarray], captions: Sequence[str],
                scenes: Sequence | None = None, *, progress: bool = True) -> tuple[torch.nn.Module, list[dict]]:
    """CLIP-train ``clip`` in place on ``images`` ({size: (N, H, W, 3) uint8}) and ``captions`` (N)
    with :class:`TowerObjective`; batches alternate resolutions (:func:`batch_rows`). Returns the
    model (eval mode) and its per-step losses."""
    bb = cfg.backbones
    torch_seed(bb.seed, "tower")
    sizes = sorted(images)
    n = len(captions)
    if any(len(images[s]) != n for s in sizes):
        raise ValueError("every resolution needs one image per caption")
    objective = tower_objective(cfg, clip, tok, images, captions, scenes)
    params = objective.parameters()
    opt = adamw(params, bb.tower_lr, weight_decay=0.1)
    sched = warmup_cosine(opt, bb.tower_steps)
    draw = rng(bb.seed, "tower")
    curve: list[dict] = []
    clip.train()
    bar = tqdm(range(bb.tower_steps), desc="stage0 tower CLIP", disable=not show_progress(progress), mininterval=2)
    worded = word_rows(scenes) if bb.tower_high_words and scenes is not None else None
    for step in bar:
        size, idx = batch_rows(cfg, step, sizes, n, worded, draw)
        loss, parts = objective(size, idx, step, legible=size == sizes[-1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():  # CLIP's clamp of the learned temperature (at most 100)
            clip.logit_scale.clamp_(0, np.log(100))
        curve.append({"step": step, "size": size, **parts})
        if step % 10 == 0:
            bar.set_postfix(loss=f"{parts['loss']:.3f}", words=f"{parts['word_loss']:.3f}",
                            ground=f"{parts['ground_loss']:.3f}", refresh=False)
    return clip.eval(), curve


@torch.no_grad()
def encode(clip, tok, images: np.ndarray | None, captions: Sequence[str] | None, *, feature_layer: int,
           batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Normalised image and caption embeddings and the feature-layer tokens, in batches."""
    out: dict[str, list] = {"image": [], "tokens": [], "text": []}
    clip.eval()
    if images is not None:
        for i in range(0, len(images), batch_size):
            pooled, tokens = visual_forward(clip.visual, to_pixel_values(images[i: i + batch_size]), feature_layer)
            out["image"].append(F.normalize(pooled, dim=-1))
            out["tokens"].append(tokens)
    if captions is not None:
        for i in range(0, len(captions), batch_size):
            text = text_tokens(tok, captions[i: i + batch_size], clip.context_length)
            out["text"].append(encode_text(clip, text))
    return {k: torch.cat(v) for k, v in out.items() if v}
