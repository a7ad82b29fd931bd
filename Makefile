# The newcomer's contract: `make test` and `make study` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-slow study baselines lint format bench clean

# The default study: three_conditions, quick variant, in parallel on this machine, then its report.
STUDY ?= three_conditions_quick
SWEEP_DIR := outputs/sweeps/$(STUDY)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt --config-settings editable_mode=compat -e ".[study,dev,cluster]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	WANDB_MODE=disabled MPLBACKEND=Agg $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	WANDB_MODE=disabled MPLBACKEND=Agg $(BIN)/python -m pytest -q -m slow

study: $(STAMP)
	MPLBACKEND=Agg $(BIN)/mesalab-run -m study=$(STUDY) hydra/launcher=local_parallel
	MPLBACKEND=Agg $(BIN)/mesalab-report $(SWEEP_DIR)
	@echo "report: $(SWEEP_DIR)/report/report.md (and report.html)"

# Every reference policy on the bandit families: regret tables and reward-curve PNGs.
baselines: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m mesalab.analysis.demo --out outputs/baselines

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/tasks_throughput.py
	$(BIN)/python benchmarks/archs_throughput.py
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
