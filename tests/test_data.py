"""The data layer: mirror, download with hash check, and the errors a user meets."""

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rmbias import data

NOUNS = "data/corpora/dict_big2_nouns.csv"


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A private mirror holding a real copy of the nouns file (from the configured source)."""
    original = data.fetch(NOUNS)
    root = tmp_path / "mirror"
    dest = root / data.AUTHORS.folder / NOUNS
    dest.parent.mkdir(parents=True)
    shutil.copy(original, dest)
    monkeypatch.setenv(data.MIRROR_ENV, str(root))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    return root


def test_mirror_file_is_returned_after_hash_check(mirror):
    path = data.fetch("dict_big2_nouns.csv")
    assert path.is_relative_to(mirror)
    assert data.sha256sum(path) == data.FILES[(data.AUTHORS, NOUNS)]


def test_corrupt_mirror_file_is_refused(mirror):
    path = mirror / data.AUTHORS.folder / NOUNS
    path.write_bytes(path.read_bytes().replace(b"Agency", b"Agenda", 1))
    with pytest.raises(data.DataError, match="corrupt or a different version.*Replace it"):
        data.fetch(NOUNS)


def test_missing_mirror_file_says_what_to_do(mirror):
    with pytest.raises(data.DataError, match=f"missing from the mirror.*unset {data.MIRROR_ENV}"):
        data.fetch("dict_big2_expanded.csv")


def test_unknown_file_lists_registered_ones():
    with pytest.raises(data.DataError, match="(?s)not a registered data file.*dict_big2_nouns.csv"):
        data.fetch("dict_big3.csv")


@pytest.fixture
def server(mirror):
    """Serve the mirror's files over HTTP on localhost, as if it were the upstream host."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _point_urls_at(monkeypatch, base: str) -> None:
    monkeypatch.setattr(data.Source, "url", lambda self, path: f"{base}/{self.folder}/{path}")
    monkeypatch.delenv(data.MIRROR_ENV)


def test_download_is_cached_and_checked(server, monkeypatch, tmp_path):
    _point_urls_at(monkeypatch, server)
    path = data.fetch(NOUNS)
    assert path == tmp_path / "cache" / "data" / data.AUTHORS.folder / NOUNS
    assert data.sha256sum(path) == data.FILES[(data.AUTHORS, NOUNS)]
    # A cached copy that later rots is refused, with the fix.
    path.write_text("word\nnot the release\n")
    with pytest.raises(data.DataError, match=f"Delete {path}"):
        data.fetch(NOUNS)


def test_download_with_wrong_hash_keeps_nothing(server, mirror, monkeypatch, tmp_path):
    served = mirror / data.AUTHORS.folder / NOUNS
    served.write_text("tampered\n")
    _point_urls_at(monkeypatch, server)
    with pytest.raises(data.DataError, match="failed its sha256 check"):
        data.fetch(NOUNS)
    assert not (tmp_path / "cache" / "data" / data.AUTHORS.folder / NOUNS).exists()


def test_no_network_and_no_mirror_says_to_set_the_mirror(mirror, monkeypatch):
    _point_urls_at(monkeypatch, "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(data.DataError, match=f"Could not download.*set {data.MIRROR_ENV}"):
        data.fetch(NOUNS)


def test_provenance_names_commit_and_licence():
    record = data.provenance("test.jsonl.gz")
    assert record["commit"] == data.HH_RLHF.commit and record["licence"] == "MIT"
    assert record["url"].endswith(f"{data.HH_RLHF.commit}/harmless-base/test.jsonl.gz")


def test_a_folder_is_built_once_and_a_build_finished_elsewhere_first_is_kept(tmp_path, monkeypatch):
    """build_once: a second call takes the finished folder; a failed build leaves nothing; and when
    another process renames its complete folder into place while this one is about to (two workers
    of the test suite joining the same model file), that folder is kept and returned, not an error."""
    target = tmp_path / "thing"
    calls = []

    def build(folder):
        calls.append(folder)
        folder.mkdir()
        (folder / "payload").write_text(str(len(calls)))
        return {"n": len(calls)}

    assert data.build_once(target, build) == target and (target / "payload").read_text() == "1"
    assert data.build_once(target, build) == target and len(calls) == 1

    def broken(folder):
        folder.mkdir()
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        data.build_once(tmp_path / "other", broken)
    assert not (tmp_path / "other").exists() and [p.name for p in tmp_path.iterdir()] == ["thing"]

    rename = Path.rename

    def racing(self, destination):  # the other process wins the race just before this rename
        Path(destination).mkdir()
        (Path(destination) / "payload").write_text("theirs")
        (Path(destination) / "complete.json").write_text("{}")
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", racing)
    raced = tmp_path / "raced"
    assert data.build_once(raced, build) == raced and (raced / "payload").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raced", "thing"]  # no scratch folder left


def test_two_processes_that_need_the_same_folder_build_it_once(tmp_path):
    """Chapters executed side by side (two processes) that need the same model: the second waits
    for the first's build and takes its folder, instead of building it again."""
    import textwrap

    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rmbias import data

        def build(folder):
            folder.mkdir()
            with open({str(tmp_path / "calls")!r}, "a") as calls:
                calls.write(sys.argv[1] + "\\n")
            time.sleep(2)
            (folder / "payload").write_text(sys.argv[1])
            return {{}}

        print(data.build_once(Path({str(tmp_path / "model")!r}), build))
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, name], stdout=subprocess.PIPE, text=True) for name in "ab"]
    outputs = [run.communicate()[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == [str(tmp_path / "model")] * 2
    assert len((tmp_path / "calls").read_text().split()) == 1  # one build, the other waited for it
    assert (tmp_path / "model" / "payload").read_text() in ("a", "b")
