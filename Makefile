# storytok — every target builds its own virtual environment on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

OUT        ?= encoded_datasets
TRAIN      ?= data/TinyStoriesV2-GPT4-train.txt
VALID      ?= data/TinyStoriesV2-GPT4-valid.txt
NAME       ?= tinystories
FIELD      ?= text
SKIP_BAD_DOCS ?=
VOCAB_SIZE ?= 10000
SPLITS     ?= train valid
WORKERS    ?=
TOKENIZER  ?= $(OUT)/tokenizer
DEMO_DIR   ?= data/demo
DEMO_OUT   ?= $(OUT)/demo
DEMO_VOCAB_SIZE ?= 1000
KIND       ?= bpe
GPT2_DIR   ?= data/gpt2
SAMPLE_STORIES ?=
CORPUS     ?= tinystories
INPUT      ?=
BENCH_MB   ?=
BENCH_ARGS ?=

# Input of each split named in SPLITS (recursive, so TRAIN=/VALID= on the command line apply):
# files, globs or directories, several separated by spaces; quoted so the shell leaves globs alone.
INPUT_train = $(TRAIN)
INPUT_valid = $(VALID)
SPLIT_INPUTS = $(foreach s,$(SPLITS),$(if $(strip $(INPUT_$(s))),$(foreach f,$(INPUT_$(s)),'$(s)=$(f)'),'$(s)='))
TRAIN_ARGS = --train $(foreach f,$(TRAIN),'$(f)')
INPUT_ARGS = --field '$(FIELD)' $(if $(filter-out 0 no false,$(SKIP_BAD_DOCS)),--skip-bad-docs)
WORKERS_ARG = $(if $(WORKERS),--workers $(WORKERS))
# KIND=gpt2-top10k: make data also fetches GPT-2's vocab.json + merges.txt into GPT2_DIR.
DATA_GPT2_ARGS = $(if $(filter gpt2-top10k,$(KIND)),--gpt2 --gpt2-dir $(GPT2_DIR))
SAMPLE_ARG = $(if $(SAMPLE_STORIES),--sample-stories $(SAMPLE_STORIES))

.PHONY: help setup setup-torch test test-all clean data tokenizer encode stats all demo bench

help: ## list targets and variables
	@echo "storytok — make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo
	@echo "variables (current value):"
	@echo "  TRAIN=$(TRAIN)    train input (make tokenizer, make encode): file(s), glob(s) or directories; .txt, .jsonl, .ndjson, .parquet, optionally .gz/.zst"
	@echo "  VALID=$(VALID)    valid input (make encode), as TRAIN"
	@echo "  FIELD=$(FIELD)    JSONL field / Parquet column holding the text"
	@echo "  SKIP_BAD_DOCS=$(SKIP_BAD_DOCS)    1: a null or missing text is an empty document (counted), not an error"
	@echo "  NAME=$(NAME)    corpus name: OUT/NAME_<split>_uint16.npy, OUT/NAME_<split>_offsets.npy"
	@echo "  OUT=$(OUT)    where Parquet parts, .npy arrays and stats.json go"
	@echo "  TOKENIZER=$(TOKENIZER)    tokenizer directory (written by make tokenizer, read by encode/stats)"
	@echo "  VOCAB_SIZE=$(VOCAB_SIZE)    tokenizer size, at most 65536 (bpe: 256 bytes + merges + <|endoftext|>; gpt2-top10k: kept tokens + <|endoftext|> + <|unk|>)"
	@echo "  SPLITS=\"$(SPLITS)\"    splits to encode and flatten (train -> TRAIN, valid -> VALID)"
	@echo "  WORKERS=$(WORKERS)    threads for training and encoding (empty = all cores)"
	@echo "  DEMO_DIR=$(DEMO_DIR)    where make demo writes its generated corpus"
	@echo "  DEMO_OUT=$(DEMO_OUT)    where make demo writes its outputs"
	@echo "  DEMO_VOCAB_SIZE=$(DEMO_VOCAB_SIZE)    tokenizer size for make demo"
	@echo "  KIND=$(KIND)    tokenizer kind: bpe (train storytok's BPE) or gpt2-top10k (the TinyStories paper's: GPT-2's top VOCAB_SIZE tokens)"
	@echo "  GPT2_DIR=$(GPT2_DIR)    KIND=gpt2-top10k: GPT-2's vocab.json + merges.txt (make data KIND=gpt2-top10k fetches them)"
	@echo "  SAMPLE_STORIES=$(SAMPLE_STORIES)    KIND=gpt2-top10k: count tokens on the first N train stories (empty = all)"
	@echo "  CORPUS=$(CORPUS)    make bench: tinystories (200 MB make_corpus.py, vocab 10K) or webtext (400 MB make_webtext.py, vocab 32K), generated once into data/bench/"
	@echo "  INPUT=$(INPUT)    make bench: any text file instead of the generated one (CORPUS still picks vocab and targets)"
	@echo "  BENCH_MB=$(BENCH_MB)    make bench: size of the generated input in MB"
	@echo "  BENCH_ARGS=$(BENCH_ARGS)    make bench: more options: --quick (about a minute), --scale (2 GB / 4 GB runs), --only encode,batch, ... (stages/bench.py --help)"
	@echo "  PYTHON=$(PYTHON)  VENV=$(VENV)    interpreter that creates the virtual environment, and where"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m storytok.warmup
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install storytok with dev tools

setup-torch: $(STAMP) ## add the CPU build of PyTorch (for storytok.datasets.torch and its tests)
	$(PY) -m pip install --quiet torch==2.13.0

test: $(STAMP) ## quick test tier (what CI runs)
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP) ## every test, including slow scale tests
	$(PY) -m pytest -q

demo: $(STAMP) ## whole pipeline on a generated corpus: no download, about a minute
	$(PY) stages/demo.py corpus --dir $(DEMO_DIR)
	$(PY) stages/tokenizer.py --train $(DEMO_DIR)/train.txt --vocab-size $(DEMO_VOCAB_SIZE) --out $(DEMO_OUT)/tokenizer $(WORKERS_ARG)
	$(PY) stages/encode.py --tokenizer $(DEMO_OUT)/tokenizer --out-dir $(DEMO_OUT) $(WORKERS_ARG) train=$(DEMO_DIR)/train.txt valid=$(DEMO_DIR)/valid.txt
	$(PY) stages/stats.py --tokenizer $(DEMO_OUT)/tokenizer --out-dir $(DEMO_OUT) train valid
	$(PY) stages/demo.py report --dir $(DEMO_DIR) --out-dir $(DEMO_OUT) --train $(TRAIN) --valid $(VALID) --real-out $(OUT)

data: $(STAMP) ## download TinyStories V2 train + valid into data/, + GPT-2's files with KIND=gpt2-top10k (resumable)
	$(PY) stages/data.py --out-dir data $(DATA_GPT2_ARGS)

tokenizer: $(STAMP) ## train the BPE (or KIND=gpt2-top10k: GPT-2's top tokens) on TRAIN into TOKENIZER (skipped when up to date)
	$(PY) stages/tokenizer.py --kind $(KIND) --gpt2-dir $(GPT2_DIR) $(SAMPLE_ARG) $(TRAIN_ARGS) $(INPUT_ARGS) --vocab-size $(VOCAB_SIZE) --out $(TOKENIZER) $(WORKERS_ARG)

encode: $(STAMP) ## encode SPLITS into OUT/parquet/<split>/ (resumes after an interruption)
	$(PY) stages/encode.py --tokenizer $(TOKENIZER) --out-dir $(OUT) $(WORKERS_ARG) $(INPUT_ARGS) $(SPLIT_INPUTS)

stats: $(STAMP) ## OUT/NAME_<split>_uint16.npy + _offsets.npy + stats.json
	$(PY) stages/stats.py --tokenizer $(TOKENIZER) --out-dir $(OUT) --name '$(NAME)' $(SPLITS)

all: $(STAMP) ## data, tokenizer, encode, stats on the real files, in that order
	$(MAKE) --no-print-directory data
	$(MAKE) --no-print-directory tokenizer
	$(MAKE) --no-print-directory encode
	$(MAKE) --no-print-directory stats

bench: $(STAMP) ## storytok vs gigatoken, tiktoken, HF tokenizers, rustbpe (CORPUS=tinystories|webtext, INPUT=file, BENCH_ARGS=--quick/--scale)
	$(PY) stages/bench.py --corpus $(CORPUS) $(if $(INPUT),--input $(INPUT)) $(if $(BENCH_MB),--mb $(BENCH_MB)) --json $(OUT)/bench.json $(BENCH_ARGS)

clean: ## remove outputs (keeps data/ and .venv)
	if [ -d "$(OUT)" ]; then find "$(OUT)" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +; fi
	rm -rf .pytest_cache
