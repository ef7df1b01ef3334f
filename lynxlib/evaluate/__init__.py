"""Evaluation: metric functions (predictions and references in, numbers out) and their tables.

* ``mme``: MME scoring by the official rules (score_mme_dir, write_mme_responses);
* ``judges`` / ``llm_judge``: the rule judge, the paper's LLM referee, cached judging (judge_items);
* ``openvqa`` / ``openvqa_tables``: Open-VQA cells, pooled Overall, controls, seed summaries;
* ``instruct``: answer length and compliance under held-out styles, held-out phrasing accuracy;
* ``owleval``: OwlEval-mini correctness/richness against the scene graph;
* ``human``: the human-rating session (paper's tie rules), its widget and Figure 4.

Submodules are imported explicitly (``from lynxlib.evaluate.mme import score_mme_dir``) so that
importing one does not pull in matplotlib or ipywidgets.
"""
