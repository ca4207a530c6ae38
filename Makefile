# Every target that runs code bootstraps .venv from pyproject.toml first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/overlaysim tour

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --out benchmarks/results.md

fuzz: $(STAMP)
	$(BIN)/python -m overlaysim.testing.fuzz --sequences 20000 --seed 20261128 --jobs 2

lint: $(STAMP)
	$(BIN)/ruff check overlaysim tests benchmarks
	$(BIN)/mypy --strict overlaysim

clean:
	rm -rf $(VENV) build *.egg-info
