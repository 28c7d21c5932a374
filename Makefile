# Set-up and checks. Every target uses the project's own virtualenv in .venv.
VENV := .venv
BIN := $(VENV)/bin
# Installing is slow (torch); the stamp makes `make test` skip it until the deps change.
STAMP := $(VENV)/.installed

.PHONY: install test lint format app

install: $(STAMP)

# -c constraints.txt pins torch to the CPU build; without it pip pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
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
