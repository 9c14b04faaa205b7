# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip

.PHONY: run test test-quick lint bench bench-quick bundle clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  echo "$(PYTHON) cannot make virtual environments: install python3-venv (sudo apt install python3-venv)" >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,bench]'
	touch $@

## Install everything and launch the app (prepares vLLM and the built-in model on first start).
run: $(VENV)/.installed
	$(VENV)/bin/vllm-desk

## Install everything (Debian tools, vLLM runtime for the tests) and run the whole test suite.
test:
	bash scripts/test.sh

## The quick local loop: no real vLLM, no Debian tools.
test-quick: $(VENV)/.installed
	$(VENV)/bin/pytest -q -m "not vllm and not tools and not slow" -x

lint: $(VENV)/.installed
	bash scripts/lint.sh

bench: $(VENV)/.installed
	$(VENV)/bin/python -m bench

bench-quick: $(VENV)/.installed
	$(VENV)/bin/python -m bench --quick

## Build the standalone app folder dist/vllm-desk/ (PyInstaller; vLLM is not bundled). See docs/install.md.
bundle: $(VENV)/.installed
	VENV=$(VENV) bash packaging/build.sh

clean:
	rm -rf $(VENV) .venv-engine build dist .pytest_cache .mypy_cache .ruff_cache
