# Everything a fresh machine needs: `make serve` serves at once and builds the knowledge base meanwhile, `make test` runs the tests.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install serve test test-fast bench clean

$(BIN)/kb: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch lies on this disk; a bare `torch` would pull CUDA
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[st,test,llm]'
	touch $(BIN)/kb

install: $(BIN)/kb

# serves at once; the knowledge base is built (or brought up to date) in the background meanwhile
serve: install
	$(BIN)/kb serve --build --host 127.0.0.1 --port 8000

test: install
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python -m ingest.bench

clean:
	rm -rf data .pytest_cache
