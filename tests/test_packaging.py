"""The pins in pyproject.toml, environment.yml and the Makefile say the same thing."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _constraints() -> dict[str, str]:
    from rmbias.colab import read_pins

    return read_pins(ROOT / "constraints.txt")


def test_environment_yml_installs_the_pins_of_constraints_txt_and_the_makefiles_torch():
    from packaging.utils import canonicalize_name

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {canonicalize_name(n): v for n, v in (dep.split("==") for dep in pip_section if "==" in dep)}
    torch = conda_pins.pop("torch")
    assert conda_pins == _constraints()
    makefile_torch = re.search(r"TORCH_SPEC \?= torch==(\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert torch == makefile_torch


def test_every_requirement_has_a_pin_that_meets_it_and_every_pin_a_requirement():
    """pyproject.toml says what the library needs (floors), constraints.txt what the book ran with;
    `make env` installs the one under the other, Colab keeps what meets a floor."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    requirements = {canonicalize_name(r.name): r for r in map(Requirement, wanted)}
    pins = _constraints()
    assert set(pins) == set(requirements) - {"torch"}
    unmet = {n: str(r) for n, r in requirements.items() if n in pins and not r.specifier.contains(Version(pins[n]))}
    assert not unmet
    assert "constraints.txt" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("make test", "make book"):
        assert command in readme and command in ci


def test_the_torch_range_admits_no_release_below_what_transformers_5_needs():
    """transformers 5 switches its torch code off below torch 2.6 (the paper profile on an old Colab
    or lab image would then fail at its first model); the range in pyproject must not admit those,
    and must admit the Makefile's pin."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = next(Requirement(d) for d in project["dependencies"] if Requirement(d).name == "torch")
    pinned = re.search(r"TORCH_SPEC \?= torch==(\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert not torch.specifier.contains("2.5.1") and torch.specifier.contains("2.6.0")
    assert torch.specifier.contains(pinned)


def test_the_bitsandbytes_install_hint_names_the_pinned_version():
    from rmbias import placement

    assert placement.BITSANDBYTES == f"bitsandbytes=={_constraints()['bitsandbytes']}"


def test_citation_cff_prefers_the_study_the_readme_cites():
    """GitHub's "Cite this repository" and the README's BibTeX name the same paper, authors and year,
    and the book's own entry names the repository in _config.yml."""
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    bib = (ROOT / "book" / "references.bib").read_text()
    entry = bib[bib.index("@inproceedings{christian2026reward") :].split("\n}\n")[0]
    field = lambda name: re.search(rf"{name}\s*=\s*\{{(.*?)\}},?\n", entry, re.S).group(1)  # noqa: E731
    preferred = citation["preferred-citation"]
    assert preferred["title"] == field("title") and str(preferred["year"]) == field("year")
    bib_authors = [" ".join(a.split()) for a in field("author").split(" and ")]
    assert [f"{a['family-names']}, {a['given-names']}" for a in preferred["authors"]] == bib_authors
    assert f"arXiv:{field('eprint')}" in [i["value"] for i in preferred["identifiers"]]
    readme = (ROOT / "README.md").read_text()
    assert "@inproceedings{christian2026reward" in readme and field("eprint") in readme
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert citation["repository-code"] == config["repository"]["url"]
