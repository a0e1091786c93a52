import json

import pandas as pd
import pytest

from rmbias import artifacts


def test_table_is_written_with_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv(artifacts.RESULTS_ENV, str(tmp_path))
    out = artifacts.results_dir("tiny", "01_corpora")
    assert out == tmp_path / "tiny" / "01_corpora"
    table = pd.DataFrame({"word": ["love", "freedom"], "rank": [1, 2]})
    artifacts.write_table(table, out, "ranks", model="tiny-llama")
    meta = json.loads((out / "ranks.meta.json").read_text())
    assert meta["rows"] == 2 and meta["model"] == "tiny-llama"
    assert meta["versions"]["transformers"] != "not installed"
    assert artifacts.read_table(out, "ranks").equals(table)
    assert not list(out.glob(".*tmp"))  # no temporary files left behind


def test_missing_table_names_the_chapter_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the chapter that writes it first"):
        artifacts.read_table(tmp_path, "token_coverage")


def test_summary_holds_numbers_profile_and_versions(tmp_path):
    import numpy as np

    artifacts.write_summary(tmp_path, {"d": np.float64(0.4), "n": np.int64(3)}, profile="demo")
    record = json.loads((tmp_path / "summary.json").read_text())
    assert record["numbers"] == {"d": 0.4, "n": 3} and record["profile"] == "demo"
