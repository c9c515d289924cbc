# storytok — every target builds its own virtual environment on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

OUT        ?= encoded_datasets
TRAIN      ?= data/TinyStoriesV2-GPT4-train.txt
VALID      ?= data/TinyStoriesV2-GPT4-valid.txt
VOCAB_SIZE ?= 10000
SPLITS     ?= train valid
WORKERS    ?=

.PHONY: help setup test test-all clean

help: ## list targets and variables
	@echo "storytok — make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo
	@echo "variables (current value):"
	@echo "  TRAIN=$(TRAIN)  VALID=$(VALID)  OUT=$(OUT)  VOCAB_SIZE=$(VOCAB_SIZE)  SPLITS=\"$(SPLITS)\"  WORKERS=$(WORKERS)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install storytok with dev tools

test: $(STAMP) ## quick test tier (what CI runs)
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP) ## every test, including slow scale tests
	$(PY) -m pytest -q

clean: ## remove outputs (keeps data/ and .venv)
	rm -rf $(OUT)/* .pytest_cache
