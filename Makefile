# Every target builds its own virtual environment first (scripts/install.sh), so each works on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gpuaug-installed
CORE_STAMP := $(VENV)/.gpuaug-core-installed
DOCS_STAMP := $(VENV)/.gpuaug-docs-installed

.PHONY: demo test bench docs figures wheel clean

# The demo needs the core install alone (torch CPU + gpuaug's own dependencies, about 1 GB); the tests and the
# bench add DALI, triton, the test tools and the contenders (about 3.5 GB in all) to the same venv.
$(CORE_STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV) ""
	touch $@

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV) dali,test,bench
	touch $@

$(DOCS_STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV) docs
	touch $@

demo: $(CORE_STAMP)
	$(PY) -m gpuaug demo --out demo_out

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# The wheel (dist/gpuaug-*.whl), installed alone into a fresh venv outside the tree and run (gpuaug info, a
# first batch): what `pip install gpuaug-*.whl` gives a user.
wheel:
	bash scripts/wheel-check.sh dist

bench: $(STAMP)
	$(PY) -m gpuaug bench

# The documentation site into site/ (git-ignored); --strict turns every warning (a broken link, a missing
# reference, a docstring that does not render) into a failure, as in CI.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# Every figure of the docs from the bundled synthetic data (the bench plots come from bench/results/).
figures: $(STAMP)
	$(PY) docs/figures.py docs/figures

clean:
	rm -rf $(VENV) demo_out site dist .pytest_cache
