# The README's two commands: `make study` (the tiny study, end to end) and `make test` (everything CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCALE ?= tiny
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DS_ACCELERATOR := cpu
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: venv study test notebooks lab clean-smoke

venv: $(STAMP)

# Creates the environment once and reuses it; reinstalls when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

study: venv
	$(BIN)/python -m lynxlib.study --scale $(SCALE)

test: venv
	$(BIN)/python -m pytest tests -q -p no:cacheprovider
	rm -rf outputs/smoke
	TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 $(BIN)/python -m pytest --nbval notebooks -q -p no:cacheprovider \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 900

# Re-execute the committed notebooks on smoke params (what nbval compares against), from a clean smoke run.
notebooks: venv
	rm -rf outputs/smoke
	for nb in notebooks/[0-9]*.ipynb; do \
		TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 $(BIN)/papermill $$nb $$nb --cwd notebooks || exit 1; done

lab: venv
	$(BIN)/jupyter lab --no-browser --ip 127.0.0.1 notebooks

clean-smoke:
	rm -rf outputs/smoke
