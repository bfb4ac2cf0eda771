# Kura: `make run` sets everything up and starts Kura; `make test` sets up and runs the whole suite.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
KURA   := $(VENV)/bin/kura
STAMP  := $(VENV)/.kura-installed
TEST_STAMP := $(VENV)/.kura-test-installed

.PHONY: install run test lint format lock clean eval eval-large

install: $(STAMP)

# The lock is the whole environment: --no-deps installs exactly it, so pip never resolves
# (and never swaps the CPU torch for a CUDA build, nor pulls torchvision in for optimum-intel).
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --no-deps -r requirements.lock
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The test-only extra: llama.cpp's OpenAI-compatible server, for the `openai` backend's test and the
# `kura bench` baseline. It compiles from source, so its instruction set is set here, never taken from
# the build host (GGML_NATIVE): a native build on an Intel Xeon with AMX emitted AMX tile code that
# faulted on its first matmul, and a build with AVX-512 died with SIGILL on an AMD EPYC of the same kind
# without it. The set is x86-64-v3 (AVX2, FMA, F16C, BMI2), which every machine of this kind has; AVX-512,
# AVX-VNNI and AMX always off. tests/bench/test_llama_build.py checks the built library for AMX and AVX-512
# instructions. --no-cache-dir: pip's wheel cache is keyed by the sdist, not by these flags, so a wheel
# built natively earlier would otherwise be reused.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
	-DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_STAMP := $(VENV)/.kura-llama-$(shell echo '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

$(TEST_STAMP): $(STAMP) $(LLAMA_STAMP)
	touch $(TEST_STAMP)

# Order-only on the main install: a change to requirements.lock does not recompile llama.cpp (10 minutes).
$(LLAMA_STAMP): requirements-llama-server.lock | $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --no-deps --no-cache-dir --force-reinstall \
	  -r requirements-llama-server.lock
	rm -f $(VENV)/.kura-llama-*
	touch $(LLAMA_STAMP)

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

# The realistic-scale eval: 881 files, ~40,000 chunks, 40 MB of downloads (git-ignored); the ingest takes a while.
eval-large: install
	$(PY) data/eval/build_large.py --out data/eval/corpus-large --check
	$(KURA) ingest data/eval/corpus-large --collection large-eval
	$(KURA) eval data/eval/questions-large.jsonl --collection large-eval --output data/eval/results-large.jsonl

# Style, then types, then the import layers: the settings of mypy (rag/ and ingest/, strict about untyped
# functions) and of import-linter (imports run downhill, no cycle) are in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Re-resolve the pins (needs the network to PyPI): torch first, so the CPU wheel on disk is kept.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet torch==2.13.0
	.lock-venv/bin/pip install --quiet -c requirements.lock .[test]
	.lock-venv/bin/pip install --quiet --no-deps rapidocr-openvino==1.4.4
	.lock-venv/bin/pip uninstall --yes --quiet torchvision
	{ sed -n '1,2p' requirements.lock; echo "torch==2.13.0"; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -e '^torch==' -e '^kura' -e '^pip=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
