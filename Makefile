# The two set-up commands (see README): `make demo` and `make test`.
# Both create .venv with the pinned dependencies first; nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/ehdnas: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/ehdnas

demo: install
	$(BIN)/ehdnas targets
	$(BIN)/ehdnas benchmark --target ort-cpu --space darts --samples 5 --seed 0

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
