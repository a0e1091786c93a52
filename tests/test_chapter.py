"""The chapter object: settings, results folder, numbers glued and recorded at once, earlier chapters read."""

import json

import numpy as np
import pandas as pd
import pytest

from rmbias import artifacts
from rmbias.chapter import Chapter


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv(artifacts.RESULTS_ENV, str(tmp_path))
    return tmp_path


def test_a_chapter_resolves_its_settings_and_makes_only_its_own_folder(results):
    chapter = Chapter.open("02_rm_scoring", "tiny", max_words=3, batch_size=None)
    assert chapter.settings.max_words == 3 and chapter.settings.batch_size == 32  # None keeps the profile's
    assert chapter.out == results / "tiny" / "02_rm_scoring" and chapter.out.is_dir()
    assert sorted(p.name for p in (results / "tiny").iterdir()) == ["02_rm_scoring"]
    with pytest.raises(ValueError, match="setting 'batch_size': 0 must be at least 1"):
        Chapter.open("02_rm_scoring", "tiny", batch_size=0)


def test_number_glues_every_value_and_records_the_numbers(results, monkeypatch):
    glued = []
    monkeypatch.setattr("rmbias.chapter.glue", lambda name, value, display=True: glued.append((name, value, display)))
    chapter = Chapter.open("01_corpora", "tiny")
    assert chapter.number("n_words", np.int64(7), display=False) == 7
    chapter.number("share", 0.25)
    chapter.number("agrees", np.bool_(True))
    chapter.number("sentence", "a sentence for the prose")
    assert [g[0] for g in glued] == ["n_words", "share", "agrees", "sentence"] and glued[0][2] is False
    chapter.summary["table_of_counts"] = {"a": 1}  # what is not glued is recorded by hand
    path = chapter.finish(seconds={"all": 1.5})
    record = json.loads(path.read_text())
    assert record["profile"] == "tiny"
    assert record["numbers"] == {
        "n_words": 7,
        "share": 0.25,
        "agrees": True,
        "table_of_counts": {"a": 1},
        "seconds": {"all": 1.5},
    }


def test_an_earlier_chapter_is_read_when_it_has_run_and_named_when_it_has_not(results):
    later = Chapter.open("06_stats", "tiny")
    with pytest.raises(
        FileNotFoundError, match=r"chapter 03_logit_tracing, which has not run.*--profile tiny --only 03"
    ):
        later.read_table("03_logit_tracing", "medians")
    assert not (results / "tiny" / "03_logit_tracing").exists()  # reading never creates the folder
    assert later.earlier("03_logit_tracing", required=False) == results / "tiny" / "03_logit_tracing"
    earlier = Chapter.open("03_logit_tracing", "tiny")
    earlier.table(pd.DataFrame({"x": [1, 2]}), "medians", prompt="p")
    with pytest.raises(FileNotFoundError, match="has not run"):  # a table alone: the chapter did not finish
        later.earlier("03_logit_tracing")
    earlier.finish()
    assert later.read_table("03_logit_tracing", "medians")["x"].tolist() == [1, 2]
    assert json.loads((earlier.out / "medians.meta.json").read_text())["prompt"] == "p"
