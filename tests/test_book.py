"""Every chapter executes in the tiny profile, and the book builds in strict mode."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from rmbias import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [p.stem for p in book.notebook_sources(ROOT)]


@pytest.fixture(scope="session")
def executed(project_copy) -> Path:
    """All chapters executed once, in the tiny profile, inside the scratch project."""
    book.run("tiny", book_dir=project_copy / "book", results_dir=project_copy / "results", cwd=project_copy)
    return project_copy


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executes_without_errors_and_writes_its_summary(executed, chapter):
    nb = nbformat.read(executed / "book" / f"{chapter}.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    bars = [o.text for o in outputs if o.output_type == "stream" and re.search(r"\d+%\|", o.text)]
    assert not bars, f"progress bars belong in the build's log, not the page: {bars[:2]}"
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'PROFILE = "tiny"' in injected[0].source
    summary = json.loads((executed / "results" / "tiny" / chapter / "summary.json").read_text())
    assert summary["profile"] == "tiny" and summary["numbers"]


@pytest.mark.slow
def test_execution_record_and_build_info(executed):
    record = json.loads((executed / "results" / "tiny" / "execution.json").read_text())
    assert set(record["seconds"]) == set(CHAPTERS)
    assert "`tiny`" in (executed / "book" / "generated" / "build_info.md").read_text()
    assert "google/gemma-2-27b-it" in (executed / "book" / "generated" / "model_sizes.md").read_text()


@pytest.fixture(scope="session")
def built(executed):
    """The tiny book built once, strictly: the finished process and the HTML folder."""
    done = subprocess.run(
        [
            Path(sys.executable).parent / "jupyter-book",
            "build",
            str(executed),
            "--warningiserror",
            "--nitpick",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
    )
    return done, executed / "_build" / "html"


@pytest.mark.slow
def test_strict_book_build(built):
    done, html = built
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (html / "index.html").is_file()
    for chapter in CHAPTERS:
        page = (html / "book" / f"{chapter}.html").read_text()
        assert "<img" in page and "Traceback" not in page
        # the parameters cells are off the page; a line names the profile that built it
        assert "tag_parameters" not in page and "tag_injected-parameters" not in page
        assert (
            "Executed with the" in page
            and '<code class="docutils literal notranslate"><span class="pre">tiny</span></code>' in page
        )


@pytest.mark.slow
def test_a_second_build_executes_only_what_changed(executed):
    """Nothing changed since the tiny build: no chapter runs again (chapter 04 adds traces to
    chapter 03's cache folder, and that must not count as a change); --force runs one again."""
    dirs = {"book_dir": executed / "book", "results_dir": executed / "results", "cwd": executed}
    assert book.run("tiny", **dirs) == {}
    assert list(book.run("tiny", only=["01"], force=True, **dirs)) == ["01_corpora"]
    first = executed / "notebooks" / f"{CHAPTERS[0]}.py"
    expected = book.build_key(first, "tiny", {"PROFILE": "tiny"}, executed / "results", CHAPTERS)["key"]
    assert book.stored_key(executed / "book" / f"{CHAPTERS[0]}.ipynb") == expected


def test_build_key_follows_code_settings_and_results_a_chapter_reads(tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    for name, text in {
        "__init__": "",
        "a": "from .b import f\n",
        "b": "def f():\n    from . import c\n",
        "c": "X = 1\n",
        "d": "X = 1\n",
    }.items():
        (library / f"{name}.py").write_text(text)
    chapter = tmp_path / "02_two.py"
    chapter.write_text('from rmbias import a\nout = results_dir(PROFILE, "01_one")\n')
    assert book.library_modules(chapter, library) == ["__init__", "a", "b", "c"]
    assert book.earlier_chapters(chapter, ["01_one", "02_two", "03_three"]) == ["01_one"]

    def key(**params):
        return book.build_key(
            chapter, "tiny", {"PROFILE": "tiny", **params}, tmp_path / "results", ["01_one", "02_two"], library
        )["key"]

    first = key()
    (library / "d.py").write_text("X = 2\n")  # not imported: no change
    assert key() == first
    (library / "c.py").write_text("X = 2\n")  # imported lazily, two modules down
    second = key()
    assert second != first
    results = tmp_path / "results" / "tiny" / "01_one"
    results.mkdir(parents=True)
    (results / "table.parquet").write_bytes(b"1")
    third = key()
    assert third != second
    (results / "traces").mkdir()  # a cache folder of the earlier chapter
    (results / "traces" / "chunk.parquet").write_bytes(b"2")
    assert key() == third
    assert key(MAX_WORDS=3) != third
    chapter.write_text(chapter.read_text() + "# a comment\n")
    assert key() != third


def test_real_chapters_depend_on_the_modules_they_reach():
    modules = book.library_modules(ROOT / "notebooks" / "02_rm_scoring.py")
    # training and ablation: lazy imports (the demo reward models are runs of chapter 05's grid)
    assert {"training", "ablation", "rewards", "scoring", "heads", "profiles"} <= set(modules)
    assert not {"planting", "sft", "logprobs"} & set(modules)
    assert book.earlier_chapters(ROOT / "notebooks" / "06_stats.py", CHAPTERS) == ["02_rm_scoring", "03_logit_tracing"]


def test_chapter_sources_are_parsed_one_thread_at_a_time(tmp_path):
    """Chapters run side by side are readied and keyed in worker threads. CPython 3.11's parser
    keeps one recursion counter for all threads, so two parses at once can fail with "AST
    constructor recursion depth mismatch" (a cold CI build did): every parse of the library's
    sources and the chapters' takes one lock. Held here, it keeps both kinds waiting."""
    import threading

    source = book.notebook_sources(ROOT)[0]
    expected = book.library_modules(source)
    results = {}
    calls = {
        "library_modules": lambda: book.library_modules(source),
        "as_notebook": lambda: book._as_notebook(source, tmp_path),
    }
    with book._PARSING:
        threads = {
            name: threading.Thread(target=lambda n=name, f=call: results.__setitem__(n, f()))
            for name, call in calls.items()
        }
        for thread in threads.values():
            thread.start()
        for thread in threads.values():
            thread.join(timeout=0.5)
        assert all(thread.is_alive() for thread in threads.values()) and results == {}
    for thread in threads.values():
        thread.join(timeout=60)
    assert results["library_modules"] == expected
    assert results["as_notebook"] == tmp_path / f"{source.stem}.ipynb" and results["as_notebook"].is_file()


# The most code lines a chapter shows a reader without unfolding anything (rmbias.book.visible_code;
# 554 in chapter 06 before the plumbing was taken off the page, 169 after). The analysis stays on the
# page; the plumbing (glue and summary records, file writing, imports and setup, figure styling) is
# removed from it or folded behind a toggle. A record inside a loop or a branch that also computes
# stays with it: only top-level plumbing statements are refused.
VISIBLE_CODE_BOUND = 200
PLUMBING = (
    "glue(",
    "chapter.number(",
    "summary[",
    "summary.update(",
    "artifacts.write_",
    "chapter.table(",
    "save(",
    "chapter.figure(",
    "chapter.finish(",
)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_shows_its_analysis_and_folds_its_plumbing(chapter):
    shown = book.visible_code(ROOT / "notebooks" / f"{chapter}.py")
    assert len(shown) <= VISIBLE_CODE_BOUND, f"{chapter} shows {len(shown)} code lines"
    assert not [line for line in shown if line.startswith(PLUMBING)]


def test_visible_code_counts_what_the_page_shows(tmp_path):
    source = tmp_path / "01_x.py"
    source.write_text("""# %% [markdown]
# # A chapter

# %% tags=["parameters"]
PROFILE = "demo"

# %% tags=["hide-input"]
import pandas as pd

# %%
# a comment is not code
table = pd.DataFrame({"a": [1, 2]})

table

# %% tags=["remove-input"]
glue("n", len(table), display=False)
""")
    assert book.visible_code(source) == ['table = pd.DataFrame({"a": [1, 2]})', "table"]


def test_the_page_shows_a_profile_line_instead_of_the_parameters_cells(tmp_path):
    cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell('PROFILE = "demo"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('PROFILE = "tiny"\nMAX_WORDS = 6', metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    path = tmp_path / "executed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    book._finish(path, {"PROFILE": "tiny", "MAX_WORDS": 6}, {"key": "abc"})
    done = nbformat.read(path, as_version=4)
    assert [c.cell_type for c in done.cells] == ["markdown", "code", "code", "markdown", "code"]
    assert all("remove-cell" in done.cells[i].metadata["tags"] for i in (1, 2))
    line = done.cells[3].source
    assert "`tiny` profile" in line and "`MAX_WORDS = 6`" in line and "{doc}`execution`" in line
    assert "remove-cell" not in done.cells[4].metadata.get("tags", [])
    assert book.stored_key(path) == "abc"


def test_unknown_parameter_is_refused(project_copy, tmp_path):
    with pytest.raises(ValueError, match="no parameter\\(s\\) \\['TEMPERATURE'\\].*declares: PROFILE"):
        book.execute(
            project_copy / "notebooks" / f"{CHAPTERS[0]}.py",
            tmp_path / "out.ipynb",
            {"PROFILE": "tiny", "TEMPERATURE": 0.7},
        )
    assert not (tmp_path / "out.ipynb").exists()


def test_failed_chapter_leaves_only_a_failed_copy(tmp_path):
    source = tmp_path / "99_broken.py"
    source.write_text('# %% tags=["parameters"]\nPROFILE = "tiny"\n\n# %%\nraise RuntimeError("boom")\n')
    with pytest.raises(RuntimeError, match="99_broken.py failed.*boom"):
        book.execute(source, tmp_path / "book" / "99_broken.ipynb", {"PROFILE": "tiny"}, cwd=tmp_path)
    assert not (tmp_path / "book" / "99_broken.ipynb").exists()
    assert (tmp_path / "book" / "99_broken.failed.ipynb").exists()


def test_unknown_profile_fails_before_running_anything(tmp_path):
    with pytest.raises(ValueError, match="valid profiles"):
        book.run("huge", book_dir=tmp_path)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_paired_notebook_for_colab_matches_its_source(chapter):
    """Colab opens notebooks/NN.ipynb: it must exist and hold the same cells as NN.py."""
    source = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    paired = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in source.cells]
    first = source.cells[0].source
    assert f"blob/{book.repository(ROOT)[1]}/notebooks/{chapter}.ipynb" in first and "colab-badge" in first


def test_execution_record_keeps_other_chapters_of_the_same_profile(tmp_path):
    path = tmp_path / "execution.json"
    path.write_text(json.dumps(book._merged_record(path, "demo", {"01_corpora": 30.0, "02_rm_scoring": 500.0})))
    merged = book._merged_record(path, "demo", {"02_rm_scoring": 450.0})
    assert merged["seconds"] == {"01_corpora": 30.0, "02_rm_scoring": 450.0}
    info = book._build_info("demo", merged["chapters"])
    assert "`01_corpora` | 30 s" in info and "`02_rm_scoring` | 450 s" in info and "| Total | 8.0 min |" in info
    assert book._merged_record(path, "tiny", {"01_corpora": 2.0})["seconds"] == {"01_corpora": 2.0}
    side_by_side = book._merged_record(path, "demo", {"03_logit_tracing": 290.0}, jobs=2)
    info = book._build_info("demo", side_by_side["chapters"])
    assert "`03_logit_tracing` | 290 s" in info and "2 chapters at a time |" in info and "overlapped" in info
    alone = next(line for line in info.splitlines() if line.startswith("| `01_corpora` | 30 s"))
    assert "at a time" not in alone  # executed by an earlier run, one chapter at a time


def test_model_sizes_list_every_paper_model_with_its_chapters():
    from rmbias.profiles import PROFILES

    table = book._model_sizes()
    rows = {line.split("`")[1]: line for line in table.splitlines()[2:]}
    paper = PROFILES["paper"]
    assert set(rows) == set(paper.reward_models) | set(paper.language_models)
    assert "| 02 | 7.50 B | 14.0 GiB bf16 |" in rows["Skywork/Skywork-Reward-Llama-3.1-8B-v0.2"]
    assert "70.55 B | 131.4 GiB bf16 | 67.7 GiB | 39.8 GiB |" in rows["meta-llama/Llama-3.3-70B-Instruct"]
    assert rows["google/gemma-2-2b-it"].split(" | ")[1] == "03, 04, 05 (trained)"
    # read from the chapters' parameters: chapter 04 traces the pretrained models too, and fine-tunes one
    assert rows["google/gemma-2-2b"].split(" | ")[1] == "03, 04 (also fine-tuned)"
    assert book.model_settings_by_chapter() == {
        "reward_models": ["02"],
        "language_models": ["03", "04"],
        "validation_model": ["04"],
        "bases": ["05"],
    }
    assert "GiB fp16" in rows["Ray2333/GRM-gemma2-2B-rewardmodel-ft"]
    assert rows["Ray2333/GRM-gemma2-2B-rewardmodel-ft"].endswith("| unpinned |")  # no public record of a commit
    assert rows["RLHFlow/ArmoRM-Llama3-8B-v0.1"].endswith("| `39aadad` |")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_colab_badge_and_install_cell_point_at_files_that_exist(chapter):
    source = (ROOT / "notebooks" / f"{chapter}.py").read_text()
    badge = re.search(r"colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/([^)\s]+)", source)
    assert badge and badge.group(1) == f"notebooks/{chapter}.ipynb" and (ROOT / badge.group(1)).is_file()
    assert "from rmbias import colab" in source and (ROOT / "lib" / "rmbias" / "colab.py").is_file()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_colab_badge_and_clone_url_are_those_of_the_config(chapter):
    """The repository is named once, in _config.yml; every chapter (and its paired notebook, which
    Colab opens) carries it, in a badge for the chapter and one for its student copy."""
    url, branch = book.repository(ROOT)
    owner_repo = url.removeprefix("https://github.com/")
    prefix = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/notebooks/"
    for path in (ROOT / "notebooks" / f"{chapter}.py", ROOT / "notebooks" / f"{chapter}.ipynb"):
        text = (
            path.read_text()
            if path.suffix == ".py"
            else "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        )
        badges = re.findall(r"https://colab\.research\.google\.com/github/[^\s)]+", text)
        clones = re.findall(r'"git", "clone", (?:"[^"]*", )*?"--branch", "([^"]+)", "(https?://[^"]+)"', text)
        assert badges == [f"{prefix}{chapter}.ipynb", f"{prefix}student/{chapter}.ipynb"] and clones == [
            (branch, url)
        ], (
            f"{path.name} links to {badges} and clones {clones}, but _config.yml names {url} ({branch}); "
            "run `make sync` after changing the repository in _config.yml"
        )
    # the first cell is rmbias.book.COLAB_CELL, word for word, in every chapter
    assert book.colab_cell(url, branch) in (ROOT / "notebooks" / f"{chapter}.py").read_text(), "run `make sync`"


def test_the_student_copies_are_up_to_date():
    assert book.student_copies(ROOT, write=False) == [], "run `make sync` (or `make student`)"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_student_copy_holds_the_exercises_but_no_solution_code(chapter):
    source = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    student = nbformat.read(ROOT / "notebooks" / "student" / f"{chapter}.ipynb", as_version=4)
    solutions = [c.source for c in source.cells if book.SOLUTION_TAG in c.metadata.get("tags", [])]
    assert len(solutions) >= 3
    others = {
        line
        for c in source.cells
        if book.SOLUTION_TAG not in c.metadata.get("tags", [])
        for line in c.source.splitlines()
    }
    # every line of solution code that the chapter has nowhere else must be gone from the copy
    own = {line for s in solutions for line in s.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    kept = {line for c in student.cells for line in c.source.splitlines()}
    assert own - others and not (own - others) & kept
    placeholders = [c.source for c in student.cells if c.source.startswith("# Your solution to exercise")]
    assert placeholders == [f"# Your solution to exercise {n}" for n in range(1, len(solutions) + 1)]
    exercises = [c.source for c in source.cells if c.source.startswith("### Exercise")]
    assert exercises and all(e in [c.source for c in student.cells] for e in exercises)
    # each exercise comes right before its solution
    for position, cell in enumerate(source.cells):
        if book.SOLUTION_TAG in cell.metadata.get("tags", []):
            assert source.cells[position - 1].source.startswith("### Exercise"), (chapter, position)


def test_a_chapter_with_code_after_a_solution_gets_no_student_copy(tmp_path):
    source = tmp_path / "09_demo.py"
    source.write_text(
        '# %% [markdown]\n# ### Exercise 1. Try\n\n# %% tags=["hide-cell", "solution"]\n'
        "# Solution to exercise 1\nanswer = 42\n\n# %%\nprint(answer)\n"
    )
    with pytest.raises(ValueError, match="09_demo.py: code cell 2 follows a solution"):
        book.student_notebook(source)
    source.write_text("# %%\nprint('no exercises')\n")
    with pytest.raises(ValueError, match="no cell is tagged 'solution'"):
        book.student_notebook(source)


@pytest.mark.slow
def test_a_student_copy_executes_in_the_tiny_profile(executed, tmp_path, monkeypatch):
    """Chapter 06's student copy (it reads the other chapters' results) runs to its end
    on the tiny book's results, without the solutions it no longer has."""
    import shutil

    from rmbias.artifacts import RESULTS_ENV

    results = tmp_path / "results"
    shutil.copytree(executed / "results", results)
    monkeypatch.setenv(RESULTS_ENV, str(results))
    chapter = CHAPTERS[-1]
    ran = tmp_path / f"{chapter}.ipynb"
    book.execute(ROOT / "notebooks" / "student" / f"{chapter}.ipynb", ran, {"PROFILE": "tiny"}, cwd=executed)
    cells = nbformat.read(ran, as_version=4).cells
    assert not [o for c in cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert sum(c.source.startswith("# Your solution to exercise") for c in cells) == 3


def _fake_book(
    root: Path, chapters: list[str], url: str = "https://github.com/someone/fork", branch: str = "dev"
) -> Path:
    """A root with a _config.yml naming another repository, and copies of some chapter sources."""
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text(f"title: a fork\nrepository:\n  url: {url}\n  branch: {branch}\n")
    for chapter in chapters:
        (root / "notebooks" / f"{chapter}.py").write_text((ROOT / "notebooks" / f"{chapter}.py").read_text())
    return root


def test_colab_links_follow_an_edited_config(tmp_path):
    chapters = CHAPTERS[:2]
    root = _fake_book(tmp_path, chapters)
    assert book.repository(root) == ("https://github.com/someone/fork", "dev")
    sources = [root / "notebooks" / f"{c}.py" for c in chapters]
    assert book.colab_links(root, write=False) == sources
    assert book.colab_links(root, write=True) == sources
    for chapter, source in zip(chapters, sources):
        text = source.read_text()
        assert f"(https://colab.research.google.com/github/someone/fork/blob/dev/notebooks/{chapter}.ipynb)" in text
        assert (
            f"(https://colab.research.google.com/github/someone/fork/blob/dev/notebooks/student/{chapter}.ipynb)"
            in text
        )
        assert '"--branch", "dev", "https://github.com/someone/fork",' in text
        assert "rmbias-book/rmbias-book" not in text
        original = (ROOT / "notebooks" / f"{chapter}.py").read_text()
        assert len(text.splitlines()) == len(original.splitlines())
    assert book.colab_links(root, write=True) == []


def test_colab_links_rewrite_a_first_cell_that_drifted_from_the_template(tmp_path):
    root = _fake_book(tmp_path, CHAPTERS[:1])
    source = root / "notebooks" / f"{CHAPTERS[0]}.py"
    source.write_text(source.read_text().replace("    os.chdir(BOOK)\n", "", 1))
    assert book.colab_links(root, write=True) == [source]
    assert book.colab_cell("https://github.com/someone/fork", "dev") in source.read_text()


def test_colab_links_carry_the_repository_into_citation_cff(tmp_path):
    root = _fake_book(tmp_path, CHAPTERS[:1])
    (root / "CITATION.cff").write_text((ROOT / "CITATION.cff").read_text())
    assert root / "CITATION.cff" in book.colab_links(root, write=True)
    assert 'repository-code: "https://github.com/someone/fork"' in (root / "CITATION.cff").read_text()


def test_a_chapter_without_a_badge_is_refused_by_name(tmp_path):
    root = _fake_book(tmp_path, CHAPTERS[:1])
    source = root / "notebooks" / f"{CHAPTERS[0]}.py"
    source.write_text(re.sub(r".*colab-badge.*\n", "", source.read_text()))
    with pytest.raises(ValueError, match=rf"{source.name}: no Colab badge found"):
        book.colab_links(root, write=False)
    source.write_text("# %%\nprint('no badge, no clone')\n")
    with pytest.raises(ValueError, match=rf"{source.name}: no Colab badge and no Colab cell found"):
        book.colab_links(root, write=False)


def test_links_command_reports_what_it_changed(tmp_path, monkeypatch, capsys):
    root = _fake_book(tmp_path, CHAPTERS[:1])
    monkeypatch.setattr(book, "ROOT", root)
    assert book.main(["links"]) == 0
    printed = capsys.readouterr().out
    assert f"notebooks/{CHAPTERS[0]}.py: now points at https://github.com/someone/fork (dev)" in printed
    assert book.main(["links"]) == 0
    assert "every chapter already points at" in capsys.readouterr().out


@pytest.mark.slow
def test_rendered_book_in_headless_chromium(built):
    """Every page loads in a browser with no error cell, its figures exist and are non-empty, its
    links to other pages resolve, and a screenshot of each chapter is kept in the build folder."""
    from rmbias import browser

    done, html = built
    assert done.returncode == 0
    report = browser.check_book(html)
    assert {f"{c}.html" for c in CHAPTERS} | {"hardware.html", "execution.html"} <= set(report)
    assert not {page: problems for page, problems in report.items() if problems}
    for chapter in CHAPTERS:
        assert browser.image_size(html / "screenshots" / f"book--{chapter}.png") is not None
    for chapter in CHAPTERS:  # each chapter page opens both notebooks in Colab
        page = (html / "book" / f"{chapter}.html").read_text()
        assert f"/notebooks/{chapter}.ipynb" in page and f"/notebooks/student/{chapter}.ipynb" in page
    assert "02_rm_scoring.html (dark mode)" in report  # ... and one chapter in the theme's dark mode
    assert browser.luminance(html / "screenshots" / "02_rm_scoring--dark.png", (2, 2)) < 0.5


def test_browser_check_finds_what_a_reader_would_see(tmp_path):
    from rmbias import browser

    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    (html / "index.html").write_text("<html><body>index</body></html>")
    (html / "book" / "empty.png").write_bytes(b"")
    (html / "book" / "fine.html").write_text("<html><body><p>fine</p><a href='page.html#top'>self</a></body></html>")
    (html / "book" / "page.html").write_text(
        "<html><body><img src='missing.png'><img src='empty.png'><a href='gone.html'>x</a>"
        "<a href='fine.html'>ok</a><a href='https://example.org/'>out</a>"
        "<pre>Traceback (most recent call last):</pre></body></html>"
    )
    report = browser.check_book(html, screenshots=False)
    assert report["fine.html"] == []
    problems = " | ".join(report["page.html"])
    assert len(report["page.html"]) == 4
    assert "missing.png is missing" in problems and "empty.png is empty" in problems
    assert "gone.html does not resolve" in problems and "shows an error" in problems


def test_a_transparent_figure_is_refused_and_the_books_style_saves_opaque_ones(tmp_path):
    """On the theme's dark background a transparent PNG keeps its black axes on black."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rmbias import browser, plots

    plots.setup()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.savefig(tmp_path / "styled.png")
    fig.savefig(tmp_path / "clear.png", transparent=True)
    plt.close(fig)
    assert browser.is_opaque(tmp_path / "styled.png") and not browser.is_opaque(tmp_path / "clear.png")
    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    (html / "index.html").write_text("<html><body>index</body></html>")
    for name in ("styled.png", "clear.png"):
        (html / "book" / name).write_bytes((tmp_path / name).read_bytes())
    (html / "book" / "page.html").write_text("<html><body><img src='styled.png'><img src='clear.png'></body></html>")
    report = browser.check_book(html, screenshots=False)
    assert report == {
        "page.html": ["page.html: image clear.png has a transparent background (unreadable in dark mode)"]
    }


def test_the_dark_mode_check_sees_the_theme_switch(tmp_path):
    """A page that follows the reader's colour scheme, as the book theme's does, and one that does not."""
    from rmbias import browser

    follows = tmp_path / "follows.html"
    follows.write_text(
        "<html><head><style>body{background:#fff} @media (prefers-color-scheme: dark)"
        "{body{background:#111}}</style><script>document.documentElement.dataset.theme = "
        "matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'</script></head>"
        "<body>text</body></html>"
    )
    assert browser.check_dark_mode(follows, tmp_path / "shots") == []
    assert browser.luminance(tmp_path / "shots" / "follows--dark.png", (2, 2)) < 0.5
    stays = tmp_path / "stays.html"
    stays.write_text("<html><body style='background:#fff'>text</body></html>")
    problems = browser.check_dark_mode(stays, tmp_path / "shots")
    assert problems == [
        "stays.html: the theme did not switch to dark mode",
        "stays.html: in dark mode the page background is still light",
    ]


def test_command_line_settings_are_checked_before_any_chapter_runs(capsys):
    assert book.parse_set(['PROMPTS=["greatest_ever_one"]', "MAX_WORDS=5"]) == {
        "PROMPTS": ["greatest_ever_one"],
        "MAX_WORDS": 5,
    }
    with pytest.raises(ValueError, match="the value of PROMPTS is not JSON.*double quotes"):
        book.parse_set(["PROMPTS=[greatest_ever_one]"])
    with pytest.raises(ValueError, match="write NAME=VALUE"):
        book.parse_set(["MAX_WORDS"])
    assert book.main(["run", "--profile", "tiny", "--set", "PROMPTS=[greatest]"]) == 1
    assert "is not JSON" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no chapter run here declares \\['SIZES'\\]"):
        book.run("tiny", only=["01", "02"], overrides={"SIZES": [10]})
    with pytest.raises(ValueError, match="setting 'prompts': unknown prompt key"):
        book.run("tiny", only=["02"], overrides={"PROMPTS": ["greatest"]})


SIDE_BY_SIDE = """# %% tags=["parameters"]
PROFILE = "tiny"

# %%
import json, os, time
from rmbias import progress

start = time.time()
progress.note("working in {name}")
time.sleep({sleep})  # {reads}
record = {{"start": start, "end": time.time(), "progress": os.environ.get("RMBIAS_PROGRESS"),
          "threads": os.environ.get("OMP_NUM_THREADS")}}
open({path!r}, "w").write(json.dumps(record))
"""


def test_chapters_run_side_by_side_each_after_the_chapters_it_reads(tmp_path, monkeypatch, capsys):
    """Three chapters, two at a time: 01 and 02 run together, 03 reads 01's results so it starts
    only when 01 has finished; each kernel has its own progress file and the build's threads."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the caller: kept, not halved
    (tmp_path / "notebooks").mkdir()
    sleeps = {"01_first": 6, "02_second": 2, "03_third": 1}
    for name, sleep in sleeps.items():
        reads = 'reads "01_first"' if name == "03_third" else "reads nothing"
        text = SIDE_BY_SIDE.format(name=name, sleep=sleep, reads=reads, path=str(tmp_path / f"{name}.json"))
        (tmp_path / "notebooks" / f"{name}.py").write_text(text)
    timings = book.run("tiny", book_dir=tmp_path / "book", results_dir=tmp_path / "results", cwd=tmp_path, jobs=2)
    assert set(timings) == set(sleeps)
    seen = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in sleeps}
    first, second, third = seen["01_first"], seen["02_second"], seen["03_third"]
    assert second["start"] < first["end"] and first["start"] < second["end"]  # side by side
    assert third["start"] >= first["end"]  # it waited for the chapter it reads
    assert len({record["progress"] for record in seen.values()}) == 3  # a progress file each
    assert {record["threads"] for record in seen.values()} == {"3"}
    assert "RMBIAS_PROGRESS" not in os.environ
    out = capsys.readouterr().out
    for name in sleeps:
        assert f"  [{name}] working in {name}" in out


SHARING = """# %% tags=["parameters"]
PROFILE = "tiny"

# %%
import json, os, time
import torch
from rmbias import progress

def wait_for(path, limit=120):
    deadline = time.time() + limit
    while not os.path.exists(path):
        assert time.time() < deadline, "the other chapter never got there: are they side by side?"
        time.sleep(0.1)

folder = {folder!r}
open(os.path.join(folder, "{name}.started"), "w").close()
wait_for(os.path.join(folder, "{other}.started"))  # both chapters are running now
progress.note("working")
first = torch.get_num_threads()
open(os.path.join(folder, "{name}.read"), "w").close()
wait_for(os.path.join(folder, "{other}.read"))
last, waited = first, 0.0
while "{name}" == "long" and last == first and waited < 60:  # the short one finishes; the long goes on
    time.sleep(0.5)
    waited += 0.5
    progress.note("still working")
    last = torch.get_num_threads()
open(os.path.join(folder, "{name}.json"), "w").write(json.dumps({{"first": first, "last": last}}))
"""


def test_a_chapter_left_running_alone_takes_the_cores_the_others_freed(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "notebooks").mkdir()
    # (the markers are named without the chapters' numbers: a chapter naming another reads its results)
    for number, name, other in (("01", "long", "short"), ("02", "short", "long")):
        text = SHARING.format(name=name, other=other, folder=str(tmp_path))
        (tmp_path / "notebooks" / f"{number}_{name}.py").write_text(text)
    book.run("tiny", book_dir=tmp_path / "book", results_dir=tmp_path / "results", cwd=tmp_path, jobs=2)
    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    assert json.loads((tmp_path / "short.json").read_text()) == {"first": half, "last": half}
    assert json.loads((tmp_path / "long.json").read_text()) == {"first": half, "last": cores}
    assert "OMP_NUM_THREADS" not in os.environ and "RMBIAS_THREADS" not in os.environ


def test_schedule_starts_nothing_after_a_failure_and_raises_it():
    import threading

    started, lock = [], threading.Lock()

    def work(name):
        with lock:
            started.append(name)
        if name == "a":
            raise RuntimeError("a failed")

    with pytest.raises(RuntimeError, match="a failed"):
        book.schedule(["a", "b", "c"], {"b": {"a"}}, work, jobs=1)
    assert started == ["a"]  # b waits for a; c is not started after a failure
    started.clear()
    book.schedule(["a2", "b", "c"], {"b": {"c"}}, work, jobs=1)
    assert started == ["a2", "c", "b"]  # the ready ones in the order given
    with pytest.raises(ValueError, match="jobs=0"):
        book.run("tiny", jobs=0)


def test_chapters_side_by_side_share_the_cores_anew_as_they_start_and_finish(tmp_path):
    from rmbias import progress

    shares = book.CoreShares(tmp_path, cores=2)
    envs = {name: shares.start(name) for name in ("01", "03", "05")}
    assert envs["05"] == {progress.THREADS_ENV: str(tmp_path / "05.threads")}
    assert [shares.path(n).read_text() for n in ("01", "03", "05")] == ["1", "1", "1"]  # at least one each
    shares.finish("01")
    assert not shares.path("01").exists() and shares.path("05").read_text() == "1"
    shares.finish("03")
    assert shares.path("05").read_text() == "2"  # alone: both cores
    shares.start("04")
    assert shares.path("04").read_text() == shares.path("05").read_text() == "1"
    assert not list(tmp_path.glob("*.tmp"))


def test_side_by_side_kernels_share_the_cores_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(book.os, "cpu_count", lambda: 8)
    assert book.kernel_env(1) == {}
    assert book.kernel_env(2) == {"OMP_NUM_THREADS": "4"}
    assert book.kernel_env(3) == {"OMP_NUM_THREADS": "2"}
    assert book.kernel_env(3, chapters=2) == {"OMP_NUM_THREADS": "4"}  # fewer to run than jobs
    assert book.kernel_env(3, chapters=1) == {}  # one chapter alone has every core
    monkeypatch.setattr(book.os, "cpu_count", lambda: 2)
    assert book.kernel_env(3) == {"OMP_NUM_THREADS": "1"}  # at least one thread each
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert book.kernel_env(2) == {}
    assert book.default_jobs("demo") == 3 and book.default_jobs("tiny") == 3
    assert book.default_jobs("paper") == 1  # a GPU's memory is sized for one chapter at a time
    monkeypatch.setattr(book.os, "cpu_count", lambda: 1)
    assert book.default_jobs("demo") == 1
