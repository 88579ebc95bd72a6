# Every target builds its own virtual environment first (scripts/install.sh), so each works on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gpuaug-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV) dali,test,bench
	touch $@

demo: $(STAMP)
	$(PY) -m gpuaug demo --out demo_out

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m gpuaug bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
