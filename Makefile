# Two commands do everything on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create (and reuse) .venv. GPU users: `make TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"`.
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.tsvq-installed

.PHONY: demo test install clean anchors levers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[demo,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tsvq demo --out runs/demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

# Benchmark-only: TimeVQVAE as an outside anchor (its wheel says Python >= 3.12 but runs on 3.11; see
# benchmarks/anchors.py) and the generation-quality levers; both read the demo's runs (`make demo` first).
anchors: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python timevqvae==1.0.1 einops
	$(BIN)/python benchmarks/anchors.py $(ARGS)

levers: $(STAMP)
	$(BIN)/python benchmarks/levers.py $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
