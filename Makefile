# One command to run the simulator, one to run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench install screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs, and creates or updates the database (SQLite under var/, or DATABASE_URL), so
# every manage.py command works on a fresh checkout.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python manage.py migrate --noinput

run: install
	$(BIN)/python manage.py setupdemo
	$(BIN)/python manage.py runfleet --sandbox 9000

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/engine_capacity.py

# The README's pictures (docs/*.png), from a fresh demo in Chromium; tests never write them.
screenshots: install
	$(BIN)/python scripts/screenshots.py
