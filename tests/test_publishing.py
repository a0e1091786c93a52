"""The GitHub Actions workflow that publishes the book, and `make publish` for those without Actions."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def lint(path: Path) -> subprocess.CompletedProcess:
    """GitHub's workflow schema (vendored in check-jsonschema, so this runs offline)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )


def test_the_workflow_is_valid_and_the_linter_rejects_a_broken_one(tmp_path):
    done = lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", 1))
    assert lint(broken).returncode != 0


def test_the_workflow_builds_the_book_on_main_caches_it_and_deploys_it_to_pages():
    spec = yaml.safe_load(WORKFLOW.read_text())
    triggers = spec.get("on", spec.get(True))  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"]
    build, deploy = spec["jobs"]["build"], spec["jobs"]["deploy"]
    steps = build["steps"]
    assert any(step.get("run", "").startswith("make book") for step in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])
    caches = [s["with"] for s in steps if s.get("uses", "").startswith("actions/cache")]
    paths = "\n".join(c["path"] for c in caches)
    assert "~/.cache/rmbias" in paths and "results" in paths and "book/*.ipynb" in paths
    for cache in caches:  # every file a cache key hashes exists, or the key would never change
        for name in re.findall(r"'([^']+)'", cache["key"]):
            assert list(ROOT.glob(name)), f"the cache key hashes {name}, which does not exist"
    assert build["steps"][1]["with"]["python-version"] == "3.11"


def test_make_publish_pushes_the_built_book_to_gh_pages():
    dry = subprocess.run(["make", "-n", "publish"], cwd=ROOT, capture_output=True, text=True)
    assert "ghp-import --no-jekyll --push --force _build/html" in dry.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_ghp_import_commits_the_html_folder_to_the_gh_pages_branch(tmp_path):
    """What `make publish` runs, without --push, in a scratch repository."""
    run = lambda *args: subprocess.run(args, cwd=tmp_path, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start")
    html = tmp_path / "_build" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text("<html>book</html>")
    ghp = Path(sys.executable).parent / "ghp-import"
    subprocess.run(
        [str(ghp), "--no-jekyll", "-m", "publish", "_build/html"],
        cwd=tmp_path,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "PATH": "/usr/bin:/bin",
        },
    )
    files = run("git", "ls-tree", "--name-only", "gh-pages").stdout.split()
    assert sorted(files) == [".nojekyll", "index.html"]
