# Kura: `make run` sets everything up and starts Kura; `make test` sets up and runs the whole suite.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
KURA   := $(VENV)/bin/kura
STAMP  := $(VENV)/.kura-installed
TEST_STAMP := $(VENV)/.kura-test-installed

.PHONY: install run test lint format lock clean eval

install: $(STAMP)

# The lock is the whole environment: --no-deps installs exactly it, so pip never resolves
# (and never swaps the CPU torch for a CUDA build, nor pulls torchvision in for optimum-intel).
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --no-deps -r requirements.lock
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The test-only extra: llama.cpp's OpenAI-compatible server, for the `openai` backend's test.
$(TEST_STAMP): $(STAMP) requirements-llama-server.lock
	$(PIP) install --quiet --no-deps -r requirements-llama-server.lock
	touch $(TEST_STAMP)

run: install
	$(KURA) models prepare
	$(KURA) ingest data/sample
	$(KURA) doctor
	$(KURA) serve

test: $(TEST_STAMP)
	$(PY) -m pytest

# The real-document eval (Debian manuals, fetched with apt-get download; nothing large is committed).
eval: install
	$(PY) data/eval/build.py --out data/eval/corpus --check
	$(KURA) ingest data/eval/corpus --collection debian-eval
	$(KURA) eval data/eval/questions.jsonl --collection debian-eval --output data/eval/results.jsonl

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Re-resolve the pins (needs the network to PyPI): torch first, so the CPU wheel on disk is kept.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet torch==2.13.0
	.lock-venv/bin/pip install --quiet -c requirements.lock .[test]
	.lock-venv/bin/pip uninstall --yes --quiet torchvision
	{ sed -n '1,2p' requirements.lock; echo "torch==2.13.0"; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -e '^torch==' -e '^kura' -e '^pip=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
