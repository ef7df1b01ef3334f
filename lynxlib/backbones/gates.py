"""Stage-0 quality gates: each backbone is measured before the study builds on it.

* :func:`lm_perplexity`: held-out perplexity of an LM beside a unigram baseline fitted on the training text.
* :func:`reading_accuracy`: answers to questions about a scene description in context, beside the same
  questions asked after another scene's description.
* :func:`style_following`: greedy answers to held-out text instructions, mean length in words per
  instruction style ("give a short answer", "in one word" ...), beside the reference answers' length.
* :func:`zero_shot_retrieval`: CLIP image -> caption (and caption -> image) top-1 on held-out scenes.
* :func:`token_probe`: linear probes on the tower's ``feature_layer`` tokens for place, colour, shape
  and count, each beside its majority-answer baseline (retrieval alone can be won from the background).
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lynxlib.backbones.lm import encode_texts
from lynxlib.data import IGNORE, Encoded, PromptFormatter, pad_batch, pad_prompts
from lynxlib.world.reading import READING_PROMPT


# ----------------------------------------------------------------------------------------------- LM
def unigram_counts(tok, texts: Sequence[str]) -> torch.Tensor:
    """Token counts over ``texts`` (as the LM is trained on them: ``<s> text </s>``)."""
    counts = torch.zeros(len(tok), dtype=torch.float64)
    for row in encode_texts(tok, texts):
        counts += torch.bincount(torch.tensor(row), minlength=len(tok)).double()
    return counts


@torch.no_grad()
def lm_perplexity(model, tok, texts: Sequence[str], *, unigram: torch.Tensor | None = None,
                  batch_size: int = 32) -> dict:
    """Mean per-token held-out loss and perplexity of ``model`` on ``texts`` (each ``<s> text </s>``,
    every token after BOS predicted), and of a unigram model from ``unigram`` counts (add-0.5)."""
    rows = encode_texts(tok, texts)
    total, n_tok = 0.0, 0
    model.eval()
    for i in range(0, len(rows), batch_size):
        chunk = [Encoded(r, r) for r in rows[i: i + batch_size]]
        batch = pad_batch(chunk, pad_id=tok.pad_token_id, side="right")
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        target = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(),
                                                 ignore_index=IGNORE, reduction="sum")
        total += float(loss)
        n_tok += int((target != IGNORE).sum())
    out = {"loss": total / n_tok, "ppl": math.exp(total / n_tok), "tokens": n_tok}
    if unigram is not None:
        probs = (unigram + 0.5) / (unigram + 0.5).sum()
        targets = torch.tensor([t for r in rows for t in r[1:]])
        uni = float(-probs[targets].log().mean())
        out |= {"unigram_loss": uni, "unigram_ppl": math.exp(uni)}
    return out


@torch.no_grad()
def reading_accuracy(model, tok, passages: Sequence, *, template: str = READING_PROMPT, batch_size: int = 64) -> dict:
    """Share of reading passages (:class:`lynxlib.world.reading.Reading`) whose answer tokens are all the
    LM's argmax after ``template`` (slots ``context``, ``question``), and the same with the *next*
    passage's context (``shuffled``: what the question alone gives). The difference is what the LM
    reads from its context. Prompt and answer are tokenized apart, as the instruction data is."""
    def rows(contexts) -> list[Encoded]:
        out = []
        for p, context in zip(passages, contexts):
            prompt = tok(template.format(context=context, question=p.question))["input_ids"]
            answer = tok(" " + p.answer, add_special_tokens=False)["input_ids"]
            out.append(Encoded(prompt + answer, [IGNORE] * len(prompt) + answer))
        return out

    def hits(encoded: list[Encoded]) -> np.ndarray:
        out = []
        for i in range(0, len(encoded), batch_size):
            batch = pad_batch(encoded[i: i + batch_size], pad_id=tok.pad_token_id, side="right")
            pred = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
            target = batch["labels"][:, 1:]
            right = (pred[:, :-1] == target) | (target == IGNORE)
            out += right.all(dim=1).tolist()
        return np.array(out, dtype=float)

    model.eval()
    contexts = [p.context for p in passages]
    true, shuffled = hits(rows(contexts)), hits(rows(contexts[1:] + contexts[:1]))
    qtypes = np.array([p.qtype for p in passages])
    by_qtype = {q: {"exact": float(true[qtypes == q].mean()), "shuffled": float(shuffled[qtypes == q].mean()),
                    "n": int((qtypes == q).sum())} for q in sorted(set(qtypes))}
    return {"exact": float(true.mean()), "shuffled": float(shuffled.mean()), "n": len(passages), "by_qtype": by_qtype}


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", text)


def _norm(text: str) -> str:
    return " ".join(_words(text.lower()))


@torch.no_grad()
def generate_answers(model, tok, samples: Sequence, *, template: str, max_new_tokens: int,
                     batch_size: int = 32) -> list[str]:
    """Greedy answers to each sample's last user turn (earlier turns given with their answers)."""
    fmt = PromptFormatter(tokenizer=tok, template=template, num_image_tokens=0, max_len=10**9)
    stop = template.split("{question}")[0].strip()  # "User:": the model starts a new turn itself
    answers: list[str] = []
    model.eval()
    for i in range(0, len(samples), batch_size):
        prompts = [fmt.encode_prompt(s.turns, has_visual=False) for s in samples[i: i + batch_size]]
        batch = pad_prompts(prompts, pad_id=tok.pad_token_id)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1]:]:
            text = tok.decode(row, skip_special_tokens=True)
            answers.append(text.split(stop)[0].strip() if stop else text.strip())
    return answers


def style_following(models: dict, tok, samples: Sequence, *, template: str, max_new_tokens: int,
                    batch_size: int = 32) -> dict:
    """Per model and instruction style: mean answer length in words (greedy), the reference answers'
    mean length, and the share of answers equal to the reference (normalised words).

    A model follows "give a short answer" / "in one word" if its answers there are much shorter than
    its plain answers and close to the references' length.
    """
    by_style: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_style[s.style].append(i)
    refs = [s.turns[-1][1] for s in samples]
    result: dict = {"styles": sorted(by_style), "reference_words": {}, "models": {}, "examples": {}}
    for style, idx in sorted(by_style.items()):
        result["reference_words"][style] = float(np.mean([len(_words(refs[i])) for i in idx]))
    for name, model in models.items():
        answers = generate_answers(model, tok, samples, template=template, max_new_tokens=max_new_tokens,
                                   batch_size=batch_size)
        per = {}
        for style, idx in sorted(by_style.items()):
            words = [len(_words(answers[i])) for i in idx]
            per[style] = {"mean_words": float(np.mean(words)), "n": len(idx),
                          "exact": float(np.mean([_norm(answers[i]) == _norm(refs[i]) for i in idx])),
                          "abs_len_error": float(np.mean([abs(w - len(_words(refs[i]))) for w, i in zip(words, idx)]))}
        result["models"][name] = per
        result["examples"][name] = [{"style": samples[i].style, "question": samples[i].turns[-1][0],
                                     "reference": refs[i], "answer": answers[i]}
                                    for i in [idx[0] for idx in by_style.values()]]
    return result


# -------------------------------------------------------------------------------------- vision
@torch.no_grad()
def zero_shot_retrieval(image_emb: torch.Tensor, text_emb: torch.Tensor) -> dict:
    """Top-1 image -> caption and caption -> image among ``n`` held-out pairs (row i matches row i)."""
    sim = image_emb.float() @ text_emb.float().T
    truth = torch.arange(len(sim))
    return {"i2t_top1": float((sim.argmax(1) == truth).float().mean()),
            "t2i_top1": float((sim.argmax(0) == truth).float().mean()),
            "chance": 1.0 / len(sim), "n": len(sim)}


def linear_probe(x_train: torch.Tensor, y_train: Sequence, x_test: torch.Tensor, y_test: Sequence, *,
                 l2: float = 1e-3, iters: int = 200) -> dict:
    """Multinomial logistic regression (L-BFGS, L2 ``l2``) on standardised features.

    Returns test accuracy and the majority-answer baseline (the train split's most frequent answer).
    """
    classes = sorted(set(y_train) | set(y_test), key=str)
    index = {c: i for i, c in enumerate(classes)}
    ytr = torch.tensor([index[c] for c in y_train])
    yte = torch.tensor([index[c] for c in y_test])
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xtr, xte = (x_train - mean) / std, (x_test - mean) / std
    w = torch.zeros(xtr.shape[1], len(classes), requires_grad=True)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, ytr) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        acc = float(((xte @ w + b).argmax(1) == yte).float().mean())
    majority = Counter(y_train).most_common(1)[0][0]
    return {"acc": acc, "majority": float(np.mean([y == majority for y in y_test])),
            "classes": len(classes), "n_train": len(ytr), "n_test": len(yte)}


def token_probe(features: dict[str, tuple[torch.Tensor, Sequence]], *, train_frac: float = 0.5,
                l2: float = 1e-3) -> dict:
    """Linear probes on tower-token features: ``{task: (features (N, D), answers (N))}`` ->
    ``{task: {acc, majority, ...}}``; the first ``train_frac`` of the rows train, the rest test."""
    out = {}
    for task, (x, y) in features.items():
        cut = int(len(y) * train_frac)
        out[task] = linear_probe(x[:cut].float(), list(y[:cut]), x[cut:].float(), list(y[cut:]), l2=l2)
    return out


def probe_features(tokens: torch.Tensor, scenes: Sequence) -> dict[str, tuple[torch.Tensor, list]]:
    """Probe tasks from a tower's tokens (N, 1 + g*g, D) (class token first) and the scenes' graphs:

    * place, count (the countable group's size): mean-pooled patch tokens;
    * colour, shape: the tokens of each object's grid cell (one row per object);
    * word: the tokens of the rendered word's cell (scenes with a word).
    """
    from lynxlib.backbones.cells import cell_mean

    patches = tokens[:, 1:]
    pooled = patches.mean(dim=1)
    out: dict[str, tuple[list, list]] = {"place": ([], []), "count": ([], []), "colour": ([], []),
                                         "shape": ([], []), "word": ([], [])}
    for i, scene in enumerate(scenes):
        out["place"][0].append(pooled[i]); out["place"][1].append(scene.place)
        out["count"][0].append(pooled[i]); out["count"][1].append(scene.count)
        for obj in scene.objects:
            cell = cell_mean(patches, i, obj.row, obj.col, scene.grid)
            out["colour"][0].append(cell); out["colour"][1].append(obj.colour)
            out["shape"][0].append(cell); out["shape"][1].append(obj.shape)
        if scene.text is not None:
            cell = cell_mean(patches, i, scene.text.row, scene.text.col, scene.grid)
            out["word"][0].append(cell); out["word"][1].append(scene.text.word)
    return {task: (torch.stack(x), y) for task, (x, y) in out.items() if x}


# ------------------------------------------------------------------------------------ summary
def summarize(gates: dict, *, margin: float = 0.05) -> list[dict]:
    """One row per gate: ``{gate, value, baseline, passed}`` (the table the backbones notebook prints).

    Bars: LM held-out loss below the unigram's; reading accuracy ``margin`` above the shuffled-context
    one; Vicuna's answers under "short"/"one_word" nearer the
    reference length than LLaMA's; retrieval top-1 above 5x chance; each probe ``margin`` above its
    majority-answer baseline.
    """
    rows = []
    for name in ("llama", "vicuna"):
        g = gates["lm"][name]
        rows.append({"gate": f"lm/{name}/heldout_loss", "value": g["loss"], "baseline": g["unigram_loss"],
                     "passed": g["loss"] < g["unigram_loss"]})
    for name, g in gates["lm"].get("reading", {}).items():
        rows.append({"gate": f"lm/{name}/reading_exact", "value": g["exact"], "baseline": g["shuffled"],
                     "passed": g["exact"] > g["shuffled"] + margin})
    style = gates["lm"]["style"]["models"]
    for s in ("short", "one_word"):
        if s in style.get("vicuna", {}):
            v, b = style["vicuna"][s]["abs_len_error"], style["llama"][s]["abs_len_error"]
            rows.append({"gate": f"lm/style/{s}/abs_len_error", "value": v, "baseline": b, "passed": v < b})
    for size, res in gates["tower"].items():
        r = res["retrieval"]
        rows.append({"gate": f"tower/{size}/retrieval_i2t", "value": r["i2t_top1"], "baseline": r["chance"],
                     "passed": r["i2t_top1"] > 5 * r["chance"]})
        for task, p in res["probe"].items():
            rows.append({"gate": f"tower/{size}/probe/{task}", "value": p["acc"], "baseline": p["majority"],
                         "passed": p["acc"] > p["majority"] + margin})
    return rows
