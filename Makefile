# Set-up and checks. Every target uses the project's own virtualenv in .venv.
VENV := .venv
BIN := $(VENV)/bin
# Installing is slow (torch); the stamp makes `make test` skip it until the deps change.
STAMP := $(VENV)/.installed

.PHONY: install test lint format app

install: $(STAMP)

# torch: PyPI's Linux wheel is the CUDA build (torch plus NVIDIA libraries, about 2.7 GB of
# downloads). Without an NVIDIA driver (no nvidia-smi) pip also reads PyTorch's CPU index, whose
# wheel (torch 2.13.0+cpu, about 190 MB) it then prefers. The index is left out when it cannot
# be reached (pip would retry it for about 20 s, warn, and install what it finds elsewhere).
# `make install TORCH_INDEX=` installs PyPI's CUDA build on any machine.
CPU_INDEX := https://download.pytorch.org/whl/cpu
REACHABLE := python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)'
TORCH_INDEX = $(shell if ! command -v nvidia-smi >/dev/null 2>&1 \
	&& $(REACHABLE) $(CPU_INDEX)/torch/ >/dev/null 2>&1; then echo --extra-index-url $(CPU_INDEX); fi)

# constraints.txt holds the exact versions CI tests; pyproject.toml only the ranges that work.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt $(TORCH_INDEX) -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Import sorting is a lint fix, not part of `ruff format`.
format: install
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest -q

app: install
	$(BIN)/attnviz app
