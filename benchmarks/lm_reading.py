"""Which text corpus teaches the tiny LM to read an attribute from its context? Recipes side by side.

    .venv/bin/python benchmarks/lm_reading.py --params params/tiny.yaml \
        --recipe base= --recipe q4=world.reading_questions=4 [--workers 2] [--passages 1024] [--out FILE.json]

Each ``--recipe NAME=KEY=VALUE,KEY=VALUE`` is the scale's params with dotted overrides (``world.*`` for
the corpus, ``backbones.lm_*`` for the pretraining). For each recipe, in its own process on one thread:
the world's text corpus and text instructions (generated in memory, as ``write_world`` would), a BPE
trained on them, "LLaMA" pretrained from scratch (``lynxlib.backbones.lm.pretrain_lm``), then the stage-0
reading gate (``reading_accuracy``) per question type on the same held-out passages for every recipe:
exact answers after the passage's own description beside another scene's (what the question alone gives);
and the bare look-up (``lookup_*``: a held-out look-up line up to its last answer, beside another line's list:
a colour by its shape and a shape by its colour; where a shape is and which shape is there).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lynxlib.backbones import heldout_lookups, heldout_reading, reading_accuracy  # noqa: E402
from lynxlib.backbones.common import Timer  # noqa: E402
from lynxlib.backbones.lm import pretrain_lm  # noqa: E402
from lynxlib.config import ConfigError, dotted_overrides, load  # noqa: E402
from lynxlib.runs import env_info, set_threads, write_json  # noqa: E402
from lynxlib.tokenizer import train_tokenizer  # noqa: E402
from lynxlib.world import stream_rng, text_corpus, text_instructions  # noqa: E402
from lynxlib.world.reading import LOOKUP_PROMPT  # noqa: E402

BINDING = ("colour", "shape", "size", "grid_position", "relation")  # answers that need the noun found first


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """``"name=a.b=1,c.d=2"`` -> ("name", ["a.b=1", "c.d=2"]); ``"name="`` is the params unchanged."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--recipe {text!r}: expected NAME=KEY=VALUE[,KEY=VALUE...] (or NAME= for the params as they are)")
    return name, [item for item in rest.split(",") if item]


def run_recipe(params: str, sets: list[str], passages: int) -> dict:
    """Corpus, tokenizer, LM pretraining and the reading gate for one recipe (one thread)."""
    set_threads(1)
    cfg = load(params, **dotted_overrides(sets))
    with Timer() as gen:
        corpus = text_corpus(cfg.world, stream_rng(cfg.world.seed, "corpus", 0))
        instructions = text_instructions(cfg.world, stream_rng(cfg.world.seed, "text-instructions", 0))
    turns = [x for s in instructions for turn in s.turns for x in turn]
    tok = train_tokenizer(corpus + turns, vocab_size=cfg.tokenizer.vocab_size)
    with Timer() as train:
        model, curve = pretrain_lm(cfg, tok, corpus, progress=False)
    reading = reading_accuracy(model, tok, heldout_reading(cfg, passages))
    # the bare look-up, scored whether or not the recipe trains on it: the list, then "The star is" -> "blue";
    # and where: "Star at the top left, circle in the center. The star is" -> "at the top left"
    lookups = heldout_lookups(cfg, passages)
    lookup = reading_accuracy(model, tok, lookups["colour"], template=LOOKUP_PROMPT)
    lookup_where = reading_accuracy(model, tok, lookups["where"], template=LOOKUP_PROMPT)
    tokens = sum(len(ids) for ids in tok(corpus)["input_ids"])
    return {"set": sets, "corpus_lines": len(corpus), "corpus_tokens": tokens, "generate_s": gen.seconds,
            "train_s": train.seconds, "final_loss": sum(loss for _, loss in curve[-50:]) / min(50, len(curve)),
            "reading": reading, "lookup": lookup, "lookup_where": lookup_where}


def table(results: dict[str, dict]) -> str:
    names = list(results)

    def row(label: str, scores: list[dict]) -> str:
        return f"{label:16s}" + "".join(f"{r['exact']:.2f} / {r['shuffled']:.2f}".rjust(22) for r in scores)

    qtypes = sorted(next(iter(results.values()))["reading"]["by_qtype"])
    rows = [f"{'question type':16s}" + "".join(f"{n:>22s}" for n in names),
            f"{'':16s}" + "".join(f"{'exact / other ctx':>22s}" for _ in names)]
    rows += [row(q + (" *" if q in BINDING else ""), [results[n]["reading"]["by_qtype"][q] for n in names]) for q in qtypes]
    rows.append(row("(all)", [results[n]["reading"] for n in names]))
    # "Green circle, blue star. The star is" -> "blue"
    rows += [row(q + " *", [results[n]["lookup"]["by_qtype"][q] for n in names]) for q in ("lookup_colour", "lookup_shape")]
    # "Star at the top left, circle in the center. The star is" -> "at the top left"
    rows += [row(q + " *", [results[n]["lookup_where"]["by_qtype"][q] for n in names])
             for q in ("lookup_position", "lookup_at")]
    rows.append(f"{'train seconds':16s}" + "".join(f"{results[n]['train_s']:>22.0f}" for n in names))
    rows.append(f"{'corpus tokens':16s}" + "".join(f"{results[n]['corpus_tokens']:>22d}" for n in names))
    rows.append("* the answer is one of several words of its kind in the description: the noun must be found first")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--recipe", action="append", required=True, help="NAME=KEY=VALUE[,KEY=VALUE...]")
    ap.add_argument("--passages", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    recipes = dict(parse_recipe(r) for r in args.recipe)
    for name, sets in recipes.items():  # bad keys fail here, before any process starts
        try:
            load(args.params, **dotted_overrides(sets))
        except ConfigError as err:
            raise SystemExit(f"--recipe {name}: {err}") from None
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {n: pool.submit(run_recipe, args.params, sets, args.passages) for n, sets in recipes.items()}
        results = {n: f.result() for n, f in futures.items()}
    print(table(results))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "results": results})


if __name__ == "__main__":
    main()
