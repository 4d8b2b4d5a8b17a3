# Two commands do everything on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create (and reuse) .venv. GPU users: `make TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"`.
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.tsvq-installed

.PHONY: demo test lint tables install clean anchors levers pretrained

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[demo,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tsvq demo --out runs/demo $(ARGS)

# the linter first (seconds), then one pytest-xdist worker per core, each test file whole in one worker (module
# fixtures are built once)
test: lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile $(ARGS)

# ruff, pinned in pyproject's dev extra and configured there: lint rules and the formatter (lines <= 120)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The tables that quote benchmark results (benchmarks/README.md, README.md), regenerated from benchmarks/results
tables: $(STAMP)
	$(BIN)/python -m benchmarks.tables

# Benchmark-only: TimeVQVAE as an outside anchor (its wheel says Python >= 3.12 but runs on 3.11; see
# benchmarks/anchors.py) and the generation-quality levers; both read the demo's runs (`make demo` first).
anchors: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python timevqvae==1.0.1 einops
	$(BIN)/python -m benchmarks.anchors $(ARGS)

levers: $(STAMP)
	$(BIN)/python -m benchmarks.levers $(ARGS)

# The shipped ecg-single-lead pipeline, rebuilt from the open databases (recipes/pretrained/README.md): every step
# reuses or resumes what an earlier run left, so the same command finishes an interrupted build. GPU:
# `make pretrained ACCELERATE_CONFIG=recipes/accelerate/single_gpu.yaml`.
SOURCE ?= ../shared/data
ACCELERATE_CONFIG ?= recipes/accelerate/cpu.yaml
PRETRAINED_OUT ?= tsvq/pretrained/ecg-single-lead
LAUNCH = $(BIN)/accelerate launch --config_file $(ACCELERATE_CONFIG) -m tsvq.cli
pretrained: $(STAMP)
	$(BIN)/tsvq prepare --config recipes/pretrained/prepare.yaml --source $(SOURCE) --out runs/pretrained/store
	$(LAUNCH) train codec --config recipes/pretrained/codec.yaml
	$(LAUNCH) train diffusion --config recipes/pretrained/diffusion.yaml
	$(LAUNCH) train diffusion --config recipes/pretrained/diffusion-labels.yaml
	$(LAUNCH) train wavenet --config recipes/pretrained/wavenet.yaml
	$(LAUNCH) train denoiser --config recipes/pretrained/denoiser.yaml
	$(LAUNCH) train denoiser --config recipes/pretrained/denoiser-refiner.yaml
	$(BIN)/tsvq assemble --codec runs/pretrained/codec/model --prior runs/pretrained/diffusion-labels/model \
		runs/pretrained/wavenet/model --denoiser runs/pretrained/denoiser-refiner/model \
		--sampling diffusion.steps=50 diffusion.sampler=dpm --half diffusion denoiser \
		--description "single-lead ECG, 250 Hz, 0.5-40 Hz, 312.5 bit/s" --out $(PRETRAINED_OUT)

clean:
	rm -rf $(VENV) runs .pytest_cache
