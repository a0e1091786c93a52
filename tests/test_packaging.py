"""The pins in pyproject.toml, environment.yml and the Makefile say the same thing."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = dict(dep.split("==") for dep in project["dependencies"] + project["optional-dependencies"]["test"]
                if "==" in dep)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(dep.split("==") for dep in pip_section if "==" in dep)
    torch = conda_pins.pop("torch")
    assert conda_pins == pins
    makefile_torch = re.search(r"TORCH_SPEC \?= torch==(\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert torch == makefile_torch


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
