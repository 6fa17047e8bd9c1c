# Entry points named in README.md.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench-env

$(BIN)/editing-service: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(BIN)/editing-service

# The main job on the embedded default: MiniLM + the shipped Bias in Bios spec.
demo: setup
	$(BIN)/editing-service run --spec biasbios_surgeon_nurse --out runs/default

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check editing_service tests benchmarks

# A separate environment for SAELens (its pins conflict with BentoML's); used by benchmarks/sae_training.py.
bench-env:
	bash benchmarks/setup_saelens_env.sh
