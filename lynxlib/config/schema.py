"""The config schema: one dataclass per component, and the value choices ``validate`` checks."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

@dataclass
class WorldConfig:
    """The synthetic world (``lynxlib.world``): sizes, vocabulary subsets, resolutions."""

    seed: int = 0                      # world seed; eval sets use seeds derived from it, disjoint from train
    num_places: int = 8                # places used (<= the world's catalogue)
    num_shapes: int = 6                # shapes used
    num_colours: int = 8               # colours used
    grid: int = 3                      # objects sit on a grid x grid layout
    max_objects: int = 3               # objects per scene (besides counting groups)
    max_count: int = 9                 # counting groups have 0..max_count members
    text_prob: float = 0.5             # share of scenes carrying a rendered word
    word_length: int = 3               # letters per rendered word
    image_size_low: int = 64           # low resolution (the paper's 224)
    image_size_high: int = 128         # high resolution (the paper's 420)
    frames: int = 5                    # frames per video clip (Lynx uses 5)
    train_scenes: int = 2000           # training images
    train_clips: int = 200             # training videos
    noisy_multiplier: int = 5          # noisy caption pool = multiplier x clean pool
    text_corpus: int = 5000            # sentences of text-only corpus (stage 0 LM pretraining)
    reading_share: float = 0.4         # share of the corpus that is reading passages (caption, question, answer)
    reading_questions: int = 1         # questions (each with its answer) per reading passage in the corpus
    recall_share: float = 0.0          # share of the corpus that is look-up lines ("red star, blue circle. the circle is blue.")
    recall_positions: float = 0.0      # share of those lines that say where ("star at the top left. the star is at the top left.")
    text_instructions: int = 2000      # text instruction examples (the "Vicuna" analogue)
    eval_scale: float = 1.0            # Open-VQA-mini = real set's 302/148 items x this factor
    mme_images_per_subtask: int = 20   # MME-mini: images per subtask, 2 questions each
    owleval_items: int = 40            # OwlEval-mini prompts
    paraphrases: int = 15              # generated paraphrases per task, besides >= 3 hand-written
    eval_scenes: int = 200             # held-out images (eval split: instruction following, held-out phrasings)
    eval_clips: int = 40               # held-out videos (eval split)


@dataclass
class DataConfig:
    """Where training and evaluation data come from: the synthetic world, or user files (paper scale)."""

    source: str = "world"              # "world" (smoke/tiny) or "files" (paper: the paths below)
    pair_shards: list[str] = field(default_factory=list)  # WebDataset tar shards of image-text pairs (img2dataset)
    noisy_pair_shards: list[str] = field(default_factory=list)  # large noisy pairs (COYO/DataComp analogue)
    instruct_json: list[str] = field(default_factory=list)  # LLaVA-style instruction JSON files
    image_root: str | None = None      # folder the instruction JSON's image paths are relative to
    open_vqa_images: str | None = None # the released Open_VQA_images.jsonl
    open_vqa_image_root: str | None = None
    open_vqa_videos: str | None = None # the released Open_VQA_videos.jsonl
    open_vqa_video_root: str | None = None
    mme_root: str | None = None        # MME benchmark folder (questions + images)


@dataclass
class TokenizerConfig:
    path: str | None = None            # tokenizer dir or hub id; None: the stage-0 tokenizer of this run
    vocab_size: int = 1024             # BPE vocabulary trained in stage 0


@dataclass
class LMConfig:
    """A transformers decoder (LLaMA architecture). Shape keys are used when stage 0 builds it."""

    backbone: str = "vicuna"           # "vicuna" (instruction-tuned) or "llama" (base): which checkpoint
    llama_path: str | None = None      # base LM dir or hub id; None: stage-0 output
    vicuna_path: str | None = None     # instruction-tuned LM dir or hub id; None: stage-0 output
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 688
    max_position_embeddings: int = 512
    dtype: str = "float32"             # float32 | bfloat16 | float16


@dataclass
class VisionConfig:
    """An open_clip tower returning its token sequence."""

    arch: str = "vit"                  # "vit" (open_clip VisionTransformer) or "eva" (timm EVA through open_clip)
    open_clip_name: str = "lynx-tiny-vit"  # open_clip model config name
    checkpoint: str | None = None      # open_clip checkpoint file; None: stage-0 tower of this run
    patch_size: int = 8                # tiny tower shape (used when stage 0 builds it)
    stem: str = "patch"                # "patch" (ViT patchify) | "conv" (stride-2 3x3 convs; lynxlib/conv_stem.py)
    width: int = 192
    layers: int = 4
    heads: int = 4
    embed_dim: int = 128               # CLIP joint embedding width
    feature_layer: int = -2            # -1 final block, -2 penultimate (LLaVA's choice)


@dataclass
class ResamplerConfig:
    num_latents: int = 32              # learned queries (paper: 32)
    depth: int = 3                     # released config: 3
    heads: int = 8
    dim_head: int = 64
    ff_mult: int = 4
    locality: float = 0.0              # spatial prior on the media attention (0: Flamingo/Lynx; lynxlib.resampler)
    sees_instruction: bool = False     # latents also attend to the prompt's token embeddings (InstructBLIP; not Lynx)
    media_pos: str = "none"            # "sincos": a fixed 2-D position code on each frame's patch tokens, through
                                       # a tanh gate at 0 (not in Flamingo/Lynx; lynxlib.resampler)


@dataclass
class AdapterConfig:
    every: int = 2                     # adapter after every M-th block (paper text: 1, released config: 2)
    bottleneck_ratio: float = 0.5      # d -> d * ratio -> d (paper: 4096 -> 2048)


@dataclass
class XAttnConfig:
    every: int = 1                     # gated cross-attention before every N-th block (Flamingo)
    heads: int = 8
    dim_head: int = 64
    ff_mult: int = 4


@dataclass
class ModelConfig:
    fusion: str = "prefix"             # "prefix" (PT, Lynx) or "cross_attn" (CA, Flamingo)
    blind: bool = False                # text-only control: the model never sees the image
    adapters: bool = True              # insert adapters into the frozen LM (PT)
    resampler: ResamplerConfig = field(default_factory=ResamplerConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    xattn: XAttnConfig = field(default_factory=XAttnConfig)


@dataclass
class BackbonesConfig:
    """Stage 0 (tiny/smoke only): pretrain the tokenizer, LM, instruct LM and vision tower."""

    lm_steps: int = 1000
    lm_batch_size: int = 32
    lm_seq_len: int = 96
    lm_lr: float = 3e-3
    vicuna_steps: int = 300
    vicuna_lr: float = 1e-3
    tower_steps: int = 1000
    tower_batch_size: int = 64
    tower_lr: float = 2e-3
    probe_items: int = 512             # held-out scenes for the tower's quality gates
    seed: int = 0                      # stage-0 seed (backbones are shared by every study seed and variant)
    tower_high_every: int = 4          # every k-th tower batch at image_size_high (0: low only); pos-embeds interpolated
    tower_high_words: bool = False     # high-res batches drawn only from scenes with a word (legible only there)
    tower_word_loss: float = 1.0       # caption words predicted from mean-pooled feature_layer tokens (0: off)
    tower_ground_loss: float = 1.0     # each object's caption words predicted from its cell's feature_layer tokens (0: off)
    tower_attr_loss: float = 0.0       # one classifier per attribute (shape, colour, size, word, count; 0: off)
    tower_token_loss: float = 0.0      # ClipLoss on mean-pooled feature_layer tokens (0: off; measured no gain)
    tower_hard_negatives: float = 0.0  # caption vs its one-attribute-off twin (0: off; measured no gain, see backbones.tower)
    parallel: bool = False             # train the LMs and the tower in two processes at once (2+ cores)


@dataclass
class StageConfig:
    """One training stage. The same loop runs every stage; budgets are steps, not seconds."""

    enabled: bool = True
    steps: int = 100
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1          # cosine decays to lr * min_lr_ratio
    clip_grad: float = 1.0
    resolution: str = "low"            # "low" or "high" (WorldConfig sizes)
    trainable: list[str] = field(default_factory=lambda: ["resampler", "adapters"])
    mixture: dict[str, float] = field(default_factory=lambda: {"caption_pair": 1.0})
    mixture_from: str = ""             # "instruct_multimodal": this scale's stage-2 mixture without its
                                       # text-only tasks (the CA variants; valid at every scale)
    opening_steps: int = 0             # the first steps draw from opening_mixture instead of mixture: a
    opening_mixture: dict[str, float] = field(default_factory=dict)  # slow task's onset before the mix
    opening_schedule: str = "shared"   # "shared": one warmup + cosine over all steps; "restart": the
                                       # opening at the peak rate, then the mixture's schedule alone
    captions: str = "clean"            # "clean" or "clean+noisy" (caption_pair samples)
    prompts: str = "diverse"           # "diverse" (all training phrasings) or "single" (one per task)
    max_seq_len: int = 128
    log_every: int = 10
    ckpt_every: int = 50
    keep_last: int = 2


# Stage keys added after stages were trained without them: at these values (the behaviour before the
# key existed) they stay out of the stage's identity (its artifact key and its checkpoints' config).
STAGE_LATER_KEYS: dict[str, object] = {"opening_steps": 0, "opening_mixture": {}, "opening_schedule": "shared"}


def without_later_keys(data: dict, later: dict[str, object]) -> dict:
    """``data`` (changed in place and returned) less each dotted key of ``later`` that holds its old value."""
    for dotted, old in later.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if node.get(leaf) == old:
            del node[leaf]
    return data


def stage_identity(stage_cfg: StageConfig) -> dict:
    """``asdict(stage_cfg)`` less the later keys at their old behaviour."""
    return without_later_keys(asdict(stage_cfg), STAGE_LATER_KEYS)


@dataclass
class GenerationConfig:
    num_beams: int = 1                 # released Lynx: 5; tiny default greedy
    max_new_tokens: int = 32           # released Lynx: 64
    template: str = "User: {question}\nBot:"  # released Lynx prompt
    batch_size: int = 32


@dataclass
class EvalConfig:
    judge: str = "rule"                # "rule" (offline) or "llm" (OpenAI-compatible endpoint from env)
    resolution: str = "high"           # resolution the model is evaluated at
    batch_size: int = 32


@dataclass
class StudyConfig:
    variants: list[str] = field(default_factory=lambda: ["ours"])
    seeds: list[int] = field(default_factory=lambda: [0])
    workers: int = 1


@dataclass
class Config:
    scale: str = "smoke"               # smoke | tiny | paper
    variant: str = "ours"
    seed: int = 0
    device: str = "cpu"
    threads: int = 0                   # torch intra-op threads; 0 keeps torch's default
    world: WorldConfig = field(default_factory=WorldConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    backbones: BackbonesConfig = field(default_factory=BackbonesConfig)
    pretrain_low: StageConfig = field(default_factory=StageConfig)
    pretrain_high: StageConfig = field(default_factory=lambda: StageConfig(resolution="high"))
    instruct: StageConfig = field(default_factory=StageConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    study: StudyConfig = field(default_factory=StudyConfig)


CHOICES: dict[str, tuple[str, ...]] = {
    "scale": ("smoke", "tiny", "paper"),
    "data.source": ("world", "files"),
    "lm.backbone": ("vicuna", "llama"),
    "lm.dtype": ("float32", "bfloat16", "float16"),
    "vision.arch": ("vit", "eva"),
    "vision.stem": ("patch", "conv"),
    "model.fusion": ("prefix", "cross_attn"),
    "model.resampler.media_pos": ("none", "sincos"),
    "eval.judge": ("rule", "llm"),
    "eval.resolution": ("low", "high"),
}
STAGE_CHOICES = {"resolution": ("low", "high"), "captions": ("clean", "clean+noisy"), "prompts": ("diverse", "single"),
                 "mixture_from": ("", "instruct_multimodal"), "opening_schedule": ("shared", "restart")}
TRAINING_STAGES = ("pretrain_low", "pretrain_high", "instruct")
TEXT_ONLY_TASKS = ("text_instruction",)  # tasks without a visual (lynxlib.world.registry: kind "none")
TRAINABLE_GROUPS = ("resampler", "adapters", "xattn", "lm", "frame_pos")
