"""The authors' releases that the offline mirror does not hold: checkpoint scores (GitHub, checked by
git blob id) and language-model log-probabilities (a Hugging Face dataset, checked by the sha256 the
hub names them by), read from small files in exactly the released layouts."""

import hashlib
import shutil
import subprocess

import huggingface_hub.constants
import numpy as np
import pandas as pd
import pytest

from rmbias import ablation, data, implicit, logprobs, released_logprobs

GEMMA_FILE = ablation.RELEASED_CHECKPOINTS["gemma"]
DICTIONARY = pd.DataFrame(
    {"word": ["freedom", "love", "success", "family"], "category": ["Agency", "Communion", "Agency", "Communion"]}
)


def checkpoint_table() -> pd.DataFrame:
    """A checkpoint file in the released layout: token_decoded, then step-N columns (here out of
    numeric order, as a string sort would put them), with variants, a token outside the dictionary
    and one that normalises to nothing."""
    return pd.DataFrame(
        {
            "token_decoded": ["freedom", " Freedom", "love", " Love", "success", "family", "car", "\u00e9"],
            "step-10000": [4.0, 2.0, 9.0, 9.0, 1.0, 0.0, 50.0, 60.0],
            "step-2000": [9.0, 9.0, 1.0, 3.0, 5.0, 4.0, 50.0, 60.0],
            "step-5000": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    )


@pytest.fixture
def released_mirror(tmp_path, monkeypatch):
    """A mirror holding a small Gemma checkpoint file, registered under its own blob id."""
    root = tmp_path / "mirror"
    path = root / data.AUTHORS.folder / GEMMA_FILE
    path.parent.mkdir(parents=True)
    checkpoint_table().to_parquet(path)
    monkeypatch.setitem(data.BLOB_FILES, (data.AUTHORS, GEMMA_FILE), data.git_blob_id(path))
    monkeypatch.setenv(data.MIRROR_ENV, str(root))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    return path


def test_git_blob_id_is_what_git_computes(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"one\ntwo\n\x00three")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout
    assert data.git_blob_id(path) == expected.strip()


def test_checkpoint_files_are_registered_by_blob_id_and_left_out_of_the_mirrored_set():
    for family, path in ablation.RELEASED_CHECKPOINTS.items():
        assert len(data.expected_digest(path)) == 40 and family in path
        assert data.provenance(path)["git_blob_id"] == data.BLOB_FILES[(data.AUTHORS, path)]
    mirrored = {p for _, p in data.FILES}
    assert not mirrored & set(ablation.RELEASED_CHECKPOINTS.values())


def test_a_tampered_checkpoint_file_is_refused_by_its_blob_id(released_mirror):
    assert data.fetch(GEMMA_FILE) == released_mirror
    table = checkpoint_table()
    table.loc[0, "step-2000"] = 8.0
    table.to_parquet(released_mirror)
    with pytest.raises(data.DataError, match="its git blob id is .*expected"):
        data.fetch(GEMMA_FILE)


def test_released_rank_changes_follow_the_authors_steps(released_mirror):
    moves, record = ablation.released_checkpoint_moves("gemma", DICTIONARY)
    assert record["steps"] == [2000, 5000, 10000] and record["git_blob_id"] == data.git_blob_id(released_mirror)
    moved = moves.set_index("word")
    # step 2000 (the first by number, not by name): words averaged over variants, then ranked (1 = best)
    # freedom 9, success 5, family 4, love 2 -> ranks 1, 2, 3, 4; step 10000: love 9, freedom 3,
    # success 1, family 0 -> ranks 1, 2, 3, 4.
    assert moved.loc[["freedom", "love", "success", "family"], "rank_first"].tolist() == [1, 4, 2, 3]
    assert moved.loc[["freedom", "love", "success", "family"], "rank_last"].tolist() == [2, 1, 3, 4]
    assert moved.loc["love", "rank_change"] == 3 and moved.loc["freedom", "rank_change"] == -1
    assert set(moves["first"]) == {2000} and set(moves["last"]) == {10000}
    assert "car" not in moved.index and len(moved) == 4  # outside the dictionary; "\u00e9" normalises to ""


def test_checkpoint_table_without_steps_is_refused():
    with pytest.raises(data.DataError, match="step-N columns"):
        ablation.checkpoint_scores(pd.DataFrame({"token_decoded": ["a"], "score": [1.0]}), "gemma", DICTIONARY)


def test_a_missing_checkpoint_file_names_the_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path))
    with pytest.raises(data.DataError, match="missing from the mirror"):
        ablation.released_checkpoint_moves("llama", DICTIONARY)


# --- the log-probabilities dataset on the hub --------------------------------------------------

# as the release has them: a bare carriage return (pandas writes it unquoted), line feeds, an empty
# string, "nan", a comma, a quote
TOKENS = ["<pad>", "The", " freedom", "freedom", "love", "\n\n", "", "nan", "Freedom", "a,b", "\r", "x\ny", '"']
PROMPTS = ["best_ever_one", "greatest_ever_one", "worst_ever_one"]


def release_csv(seed: int) -> bytes:
    """One model's file in the released layout: the three token columns, then one log-prob column
    per prompt (float32 values printed in full, as the authors' pandas wrote them)."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {"token_id": range(len(TOKENS)), "token_name": [f"t{i}" for i in range(len(TOKENS))], "token_decoded": TOKENS}
    )
    for prompt in PROMPTS:
        logits = rng.normal(size=len(TOKENS)).astype(np.float32)
        table[prompt] = (logits - np.log(np.exp(logits).sum())).astype(np.float32).astype(np.float64)
    return table.to_csv(index=False).encode()


def write_hub_file(cache, filename: str, content: bytes, commit: str = "c" * 40):
    """One dataset file as huggingface_hub stores it, at ``commit`` (which refs/main names)."""
    from rmbias import standins

    snapshot = standins.snapshot_folder(cache, released_logprobs.DATASET, commit, repo_type="dataset")
    return standins.store_file(snapshot, filename, content)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "rmbias"))
    return cache


def test_a_released_file_becomes_a_trace_with_its_provenance(hub):
    content = release_csv(0)
    write_hub_file(hub, "google--gemma-2-2b-it.csv", content)
    item = released_logprobs.released_trace("google/gemma-2-2b-it", ["greatest_ever_one", "best_ever_one"])
    expected = pd.read_csv(pd.io.common.BytesIO(content), keep_default_na=False, lineterminator="\n")
    assert item.family == "gemma" and item.instruct and item.prompts == ["greatest_ever_one", "best_ever_one"]
    assert b",\r," in content  # the carriage return is not quoted: lines end at line feeds only
    assert item.tokens["token"].tolist() == TOKENS  # "", "nan", "\r" and "\n\n" kept as written
    assert item.logprobs.dtype == np.float32
    np.testing.assert_array_equal(item.column("greatest_ever_one"), expected["greatest_ever_one"].astype(np.float32))
    assert item.meta["commit"] == "c" * 40 and item.meta["sha256"] == hashlib.sha256(content).hexdigest()
    # Analyses of the book's own traces run on it: the highest of the ids that decode to "freedom".
    assert item.by_string("greatest_ever_one")["freedom"] == np.float32(expected.loc[3, "greatest_ever_one"])
    # Converted once: the parquet copy is read by column afterwards.
    copies = list((hub.parent / "rmbias" / "released-logprobs").rglob("logprobs.parquet"))
    assert len(copies) == 1


def test_two_released_traces_feed_the_implicit_reward_as_the_books_own_do(hub):
    write_hub_file(hub, "google--gemma-2-2b-it.csv", release_csv(1))
    write_hub_file(hub, "meta-llama--Llama-3.2-3B-Instruct.csv", release_csv(2))
    found, missing = released_logprobs.released_traces(
        ["google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct"], ["greatest_ever_one"]
    )
    assert not missing and [t.family for t in found.values()] == ["gemma", "llama"]
    p, q = (t.by_string("greatest_ever_one") for t in found.values())
    table = implicit.implicit_rewards(implicit.shared_strings(p, q))
    assert "freedom" in set(table["token"]) and len(table) == len(set(TOKENS) - {""})
    shared = logprobs.shared_single_tokens(list(found.values()), DICTIONARY)
    assert shared["word"].tolist() == ["freedom", "love"]


def test_a_tampered_released_file_is_refused(hub):
    blob = write_hub_file(hub, "google--gemma-2-2b.csv", release_csv(3))
    blob.write_bytes(blob.read_bytes().replace(b"freedom", b"fr33dom", 1))
    with pytest.raises(data.DataError, match="corrupt or a different version: its sha256"):
        released_logprobs.released_trace("google/gemma-2-2b")


def test_an_absent_prompt_and_a_wrong_layout_are_named(hub):
    write_hub_file(hub, "google--gemma-2-2b.csv", release_csv(4))
    with pytest.raises(data.DataError, match="no column for prompt.*awful_ever_one"):
        released_logprobs.released_trace("google/gemma-2-2b", ["awful_ever_one"])
    write_hub_file(hub, "google--gemma-2-9b-it.csv", b"id,word\n0,a\n")
    with pytest.raises(data.DataError, match="lacks the column.*token_id"):
        released_logprobs.released_trace("google/gemma-2-9b-it")
    write_hub_file(hub, "google--gemma-2-27b-it.csv", release_csv(4).replace(b"\n", b"\r\n"))
    with pytest.raises(data.DataError, match="Windows line ends"):
        released_logprobs.released_trace("google/gemma-2-27b-it")


def test_missing_files_are_reported_in_auto_and_stop_in_required(hub):
    write_hub_file(hub, "google--gemma-2-2b.csv", release_csv(5))
    found, missing = released_logprobs.released_traces(["google/gemma-2-2b", "meta-llama/Llama-3.2-3B"])
    assert list(found) == ["google/gemma-2-2b"] and list(missing) == ["meta-llama/Llama-3.2-3B"]
    assert "HF_HUB_OFFLINE" in missing["meta-llama/Llama-3.2-3B"]
    note = data.missing_note(missing, "Figure 2 from the release")
    assert note.startswith("Figure 2 from the release is not drawn") and "meta-llama/Llama-3.2-3B" in note
    assert data.missing_note({}, "anything") == ""
    with pytest.raises(data.DataError, match="required here; set RELEASED = 'auto'"):
        released_logprobs.released_traces(["meta-llama/Llama-3.2-3B"], mode="required")
    with pytest.raises(ValueError, match="use one of auto, required"):
        released_logprobs.released_traces([], mode="maybe")


def test_a_downloaded_checkpoint_file_with_another_blob_id_keeps_nothing(released_mirror, tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    root = released_mirror.parents[len(GEMMA_FILE.split("/"))]  # the mirror folder
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setattr(data.Source, "url", lambda self, path: f"{base}/{self.folder}/{path}")
        monkeypatch.delenv(data.MIRROR_ENV)
        cached = tmp_path / "cache" / "data" / data.AUTHORS.folder / GEMMA_FILE
        assert data.fetch(GEMMA_FILE) == cached  # downloaded, blob id checked, kept
        cached.unlink()
        monkeypatch.setitem(data.BLOB_FILES, (data.AUTHORS, GEMMA_FILE), "0" * 40)
        with pytest.raises(data.DataError, match="failed its git blob id check"):
            data.fetch(GEMMA_FILE)
        assert not cached.exists()
    finally:
        httpd.shutdown()


def test_the_rehearsals_stand_in_release_is_read_as_the_real_one_would_be(tmp_path, monkeypatch):
    """The paper rehearsal's stand-in files (rmbias.standins) pass the reader's checks and give
    Figure 2's inputs: nouns that are single tokens in both vocabularies of the paper's pair."""
    from rmbias import corpora, registry, standins

    cache = tmp_path / "hub"
    pair = registry.FIGURE2_PAIRS[0]
    tokenizers: dict = {}
    snapshots = {m: standins.write_model_standin(cache, m, registry.spec(m).revision, 1, tokenizers) for m in pair}
    standins.write_logprob_standins(cache, snapshots, rows=200)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "rmbias"))
    found, missing = released_logprobs.released_traces(list(pair))
    assert not missing and all(len(t.prompts) == 54 for t in found.values())
    for trace in found.values():
        np.testing.assert_allclose(np.exp(trace.logprobs.astype(np.float64)).sum(axis=1), 1.0, rtol=1e-5)
    shared = logprobs.shared_single_tokens(list(found.values()), corpora.big2_nouns())
    assert len(shared) > 20 and set(shared["category"]) == {"Agency", "Communion"}


def test_figure5_panel_shows_the_movers_in_their_category_colours(released_mirror):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rmbias import plots

    moves, _ = ablation.released_checkpoint_moves("gemma", DICTIONARY)
    fig, ax = plt.subplots()
    shown = plots.rank_change_bars(ax, moves, n=1)
    assert shown["up"] == ["love"] and shown["down"][0] in {"freedom", "success", "family"}
    bars = ax.patches
    assert len(bars) == 2 and bars[0].get_width() == 3
    assert matplotlib.colors.to_hex(bars[0].get_facecolor()) == plots.CATEGORY_COLOURS["Communion"].lower()
    plt.close(fig)


def _trace(values: np.ndarray, tokens: list[str], prompts_: list[str]) -> logprobs.Trace:
    return logprobs.Trace(
        model="google/gemma-2-2b-it",
        key="google/gemma-2-2b-it",
        family="gemma",
        instruct=True,
        prompts=prompts_,
        logprobs=values.astype(np.float32),
        tokens=pd.DataFrame({"token_id": np.arange(len(tokens)), "token": tokens}),
        meta={},
    )


def test_compare_reports_rank_agreement_and_the_largest_differences():
    rng = np.random.default_rng(7)
    released = _trace(rng.normal(size=(2, len(TOKENS))), TOKENS, PROMPTS[:2])
    shifted = released.logprobs.copy()
    shifted[1, 4] += 0.5  # "love" after the second prompt
    own_tokens = list(TOKENS)
    own_tokens[1] = "A different token"  # this id decodes differently here: it is not compared
    own = _trace(shifted, own_tokens, PROMPTS[:2])
    table = released_logprobs.compare(own, released, DICTIONARY).set_index("prompt")
    assert table["tokens_matched"].tolist() == [len(TOKENS) - 1] * 2
    assert table.loc[PROMPTS[0], "spearman"] == pytest.approx(1.0) and table.loc[PROMPTS[0], "max_abs_diff"] == 0
    assert table.loc[PROMPTS[1], "max_abs_diff"] == pytest.approx(0.5)
    assert table.loc[PROMPTS[1], "max_abs_diff_nouns"] == pytest.approx(0.5) and set(table["nouns"]) == {2}


def test_the_rendering_probe_finds_the_format_the_release_was_made_with():
    import copy

    from rmbias import models, scoring, standins

    model, tokenizer = models.load_causal_lm("tiny-llama")
    tokenizer = copy.deepcopy(tokenizer)  # with Llama 3.2's template, which prints the date
    tokenizer.chat_template = standins.chat_template("meta-llama/Llama-3.2-3B-Instruct")
    text = "What is the greatest thing ever? Answer with one word."
    made_with = scoring.ChatFormat("single-bos", "3 Mar 2025")
    ids = scoring.encode_chat(tokenizer, [{"role": "user", "content": text}], made_with, add_generation_prompt=True)
    values = logprobs.next_token_logprobs(model, [ids]).numpy()[:, : len(tokenizer)]
    decoded = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=False)
    released = _trace(values, decoded, ["greatest_ever_one"])
    formats = [scoring.ChatFormat(t, d) for t in scoring.TOKENISATIONS for d in ("26 Jul 2024", "3 Mar 2025")]
    probe = released_logprobs.rendering_probe(model, tokenizer, released, "greatest_ever_one", text, formats)
    assert probe.loc[0, "formats"] == "single-bos / 3 Mar 2025" and probe.loc[0, "max_abs_diff"] < 1e-5
    assert probe.loc[0, "n_bos"] == 1 and len(probe) == 4 and (probe.loc[1:, "max_abs_diff"] > 1e-4).all()
    assert set(probe.loc[probe["formats"].str.startswith("authors"), "n_bos"]) == {2}
