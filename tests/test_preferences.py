"""hh-rlhf preference pairs: parsing, checks, split and subsample. (The file is red-teaming data;
these tests assert on structure only and print nothing of it.)"""

import pytest

from rmbias import preferences as P

TWO = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant: {}"


def test_parse_dialogue_alternates_roles_and_strips():
    messages = P.parse_dialogue(TWO.format("  Blue. "))
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "Hi there" and messages[-1]["content"] == "Blue."


@pytest.mark.parametrize(
    "chosen, rejected, reason",
    [
        (TWO.format("Blue."), TWO.format("Blue."), "identical_replies"),
        (TWO.format("Blue."), TWO.replace("Hi there", "Hey").format("Red."), "prefix_differs"),
        (TWO.format("Blue."), TWO.format(""), "empty_reply"),
        (
            "\n\nHuman: a\n\nHuman: b\n\nAssistant: c",
            "\n\nHuman: a\n\nHuman: b\n\nAssistant: d",
            "roles_do_not_alternate",
        ),
        ("\n\nAssistant: a", "\n\nAssistant: b", "roles_do_not_alternate"),
        ("Hi\n\nAssistant: a", "Hi\n\nAssistant: b", "no_leading_human"),
        ("\n\nHuman: a\n\nAssistant: b\n\nHuman: c", "\n\nHuman: a\n\nAssistant: b\n\nHuman: d", "no_final_reply"),
    ],
)
def test_bad_pairs_are_rejected_with_a_reason(chosen, rejected, reason):
    with pytest.raises(P.PairError) as err:
        P.to_pair(chosen, rejected)
    assert err.value.reason == reason


def test_good_pair_shares_every_turn_but_the_last():
    pair = P.to_pair(TWO.format("Blue."), TWO.format("Red."), index=7)
    assert pair["index"] == 7
    assert pair["chosen"][:-1] == pair["rejected"][:-1]
    assert pair["chosen"][-1] != pair["rejected"][-1]


@pytest.fixture(scope="module")
def parsed():
    return P.load_pairs()


def test_hh_rlhf_harmless_test_parses(parsed):
    assert parsed.n_records == 2312
    assert len(parsed.pairs) + sum(parsed.dropped.values()) == 2312
    assert len(parsed.pairs) == 2299  # 9 with two Human turns in a row, 4 with an empty reply
    assert parsed.source["licence"] == "MIT"
    for pair in parsed.pairs:
        chosen, rejected = pair["chosen"], pair["rejected"]
        assert chosen[:-1] == rejected[:-1] and chosen[-1]["content"] != rejected[-1]["content"]
        assert [m["role"] for m in chosen] == ["user", "assistant"] * (len(chosen) // 2)
    assert len({p["index"] for p in parsed.pairs}) == len(parsed.pairs)


def test_split_is_disjoint_complete_and_reproducible(parsed):
    train, held = P.split_pairs(parsed.pairs, 300, seed=3)
    ids = lambda ps: [p["index"] for p in ps]  # noqa: E731
    assert len(held) == 300 and len(train) == len(parsed.pairs) - 300
    assert not set(ids(train)) & set(ids(held))
    assert set(ids(train)) | set(ids(held)) == set(ids(parsed.pairs))
    again_train, again_held = P.split_pairs(parsed.pairs, 300, seed=3)
    assert ids(again_train) == ids(train) and ids(again_held) == ids(held)
    assert ids(P.split_pairs(parsed.pairs, 300, seed=4)[1]) != ids(held)
    with pytest.raises(ValueError):
        P.split_pairs(parsed.pairs, len(parsed.pairs) + 1)


def test_subsamples_are_seeded_and_nested(parsed):
    small, large = P.subsample(parsed.pairs, 50, seed=1), P.subsample(parsed.pairs, 200, seed=1)
    assert [p["index"] for p in small] == [p["index"] for p in large[:50]]
    assert [p["index"] for p in P.subsample(parsed.pairs, 50, seed=1)] == [p["index"] for p in small]
    assert len(P.subsample(parsed.pairs, None)) == len(parsed.pairs)


def test_shorten_keeps_the_last_exchange_and_cuts_at_a_word():
    pair = P.to_pair(TWO.format("Blue is a calm colour of the sky."), TWO.format("Red, like fire and blood."))
    short = P.shorten(pair, last_turns=1, max_chars=10)
    assert [m["role"] for m in short["chosen"]] == ["user", "assistant"]
    assert short["chosen"][0]["content"] == "Name a"  # cut at the last space within 10 characters
    assert short["chosen"][-1]["content"] == "Blue is a"
    assert short["chosen"][:-1] == short["rejected"][:-1]
    assert P.shorten(pair) == pair
    same_start = P.to_pair(TWO.format("Blue is nice, really."), TWO.format("Blue is nice, truly."))
    with pytest.raises(P.PairError):
        P.shorten(same_start, max_chars=13)
    kept, dropped = P.shorten_all([pair, same_start], max_chars=13)
    assert len(kept) == 1 and dropped == 1


# --- hub preference datasets, read from stand-in snapshots in their published layouts -------------

import huggingface_hub.constants  # noqa: E402
import pandas as pd  # noqa: E402


def test_stand_in_snapshots_have_the_published_layout_and_load_offline(hub_cache):
    cache, folders = hub_cache
    uf, sky = folders[P.UNIFIED_FEEDBACK], folders[P.SKYWORK]
    assert sorted(p.relative_to(uf).as_posix() for p in uf.rglob("*.parquet")) == [
        *(f"all/train-0000{i}-of-00006.parquet" for i in range(6)),
        "all/val-00000-of-00001.parquet",
    ]
    assert [p.relative_to(sky).as_posix() for p in sky.rglob("*.parquet")] == ["data/train-00000-of-00001.parquet"]
    assert sky.name == P.HUB_PREFERENCES[P.SKYWORK].revision  # the pinned commit
    # the card declares every subset, but a download of "all" holds only its files: the loader needs no more
    assert set(P.card_data_files(uf, "Nectar")) == {"train", "val"} and not (uf / "Nectar").exists()
    assert P.card_data_files(uf, "all") == {"train": [str(uf / "all/train-*")], "val": [str(uf / "all/val-*")]}
    assert P.hub_snapshot(P.SKYWORK) == sky and P.hub_snapshot(P.UNIFIED_FEEDBACK) == uf
    train = P.load_hub_split(P.UNIFIED_FEEDBACK, "train")
    assert train.column_names == ["id", "conv_A", "conv_B", "conv_A_rating", "conv_B_rating", "num_turns", "source"]
    assert list(train[0]["conv_A"][0]) == ["role", "content"]
    assert str(train.features["conv_A_rating"].dtype) == "float32" and len(train) == 96
    assert len(P.load_hub_split(P.UNIFIED_FEEDBACK, "val")) == 16
    skywork = P.load_hub_split(P.SKYWORK, "train")
    assert skywork.column_names == ["chosen", "rejected", "source"] and list(skywork[0]["chosen"][0]) == [
        "content",
        "role",
    ]


def test_an_unreachable_dataset_names_the_cache_and_the_revision(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match="HF_HUB_CACHE") as err:
        P.hub_snapshot(P.SKYWORK)
    assert P.HUB_PREFERENCES[P.SKYWORK].revision in str(err.value)


def test_every_kth_selection_equals_the_authors_indices(hub_cache):
    """The authors' load_datasets.py: filter ties with datasets, then select(range(0, len, k)), then
    select(range(0, size)); the pool selects the same records."""
    table = P.load_hub_split(P.UNIFIED_FEEDBACK, "train")
    untied = table.filter(lambda e: e["conv_A_rating"] != e["conv_B_rating"])
    pool = P.PairPool.load(P.UNIFIED_FEEDBACK, heldout="authors", summarize_prefix=True, keep_irregular=True)
    assert pool.n_available == len(untied) < len(table)
    for k in (64, 32, 16, 8, 3):
        authors = untied.select(range(0, len(untied), k))["id"]
        pairs, record = pool.draw(len(authors), selection="every-kth", stride=k)
        assert [table[p["index"]]["id"] for p in pairs] == authors and record["stride"] == k
        size = max(1, len(authors) // 2)  # a size below the stride's yield: the first `size` of them
        assert [table[p["index"]]["id"] for p in pool.draw(size, selection="every-kth", stride=k)[0]] == authors[:size]
    # without a stride, the largest stride that still gives the size
    assert P.largest_stride(849_000, 13_266) == 64 and P.largest_stride(10, 6) == 1 and P.largest_stride(10, 3) == 4
    with pytest.raises(ValueError, match="cannot draw"):
        pool.draw(pool.n_available + 1)


def test_rows_are_selected_on_the_arrow_table_before_becoming_python_objects(hub_cache, monkeypatch):
    pool = P.PairPool.load(P.UNIFIED_FEEDBACK, heldout="authors", summarize_prefix=True, keep_irregular=True)
    converted = []
    real = P._hub_messages
    monkeypatch.setattr(P, "_hub_messages", lambda record, *a, **k: converted.append(record) or real(record, *a, **k))
    pairs, _ = pool.draw(5, selection="every-kth")
    assert len(pairs) == 5 and len(converted) == 5  # not the 96 rows of the table
    pairs, _ = pool.draw(7, seed=3)
    assert len(converted) == 12


def test_held_out_pairs_follow_the_authors_rule(hub_cache):
    uf = P.PairPool.load(P.UNIFIED_FEEDBACK, heldout="authors", keep_irregular=True)
    val = P.load_hub_split(P.UNIFIED_FEEDBACK, "val")
    untied_val = [r["id"] for r in val if r["conv_A_rating"] != r["conv_B_rating"]]
    assert [val[p["index"]]["id"] for p in uf.heldout] == untied_val  # the val split, ties dropped
    assert uf.info["revision"] == P.UNPINNED and uf.info["snapshot_commit"]  # unpinned, but what was read is recorded
    sky = P.PairPool.load(P.SKYWORK, heldout="authors", keep_irregular=True)
    n = len(P.load_hub_split(P.SKYWORK, "train"))
    assert len(sky.heldout) == -(-n * 5 // 1000) and sky.n_available == n - len(sky.heldout)  # train_test_split(0.005)
    assert not {p["index"] for p in sky.heldout} & set(sky.rows)
    assert sky.info["revision"] == sky.info["snapshot_commit"] == P.HUB_PREFERENCES[P.SKYWORK].revision
    carved = P.PairPool.load(P.UNIFIED_FEEDBACK, n_heldout=10, split_seed=1)
    assert len(carved.heldout) == 10 and not {p["index"] for p in carved.heldout} & set(carved.rows)


def test_the_summarise_prefix_and_the_authors_irregular_pairs(hub_cache):
    table = P.load_hub_split(P.UNIFIED_FEEDBACK, "train")
    rows = P.untied_rows(table)
    authors = P.table_pairs(table, rows, "rated", summarize_prefix=True, keep_irregular=True)
    book = P.table_pairs(table, rows, "rated")
    for pair in authors.pairs:
        summarise = "summarize" in table[pair["index"]]["source"]
        for side in ("chosen", "rejected"):
            assert pair[side][0]["content"].startswith(P.SUMMARIZE_PREFIX) == summarise
    assert any("summarize" in table[p["index"]]["source"] for p in authors.pairs)
    # multi-turn arena chats whose earlier replies differ: the authors trained on them, the book's checks drop them
    assert authors.source["irregular_kept"] == {"prefix_differs": book.dropped["prefix_differs"]} and len(
        authors.pairs
    ) == len(rows)
    assert len(book.pairs) == len(rows) - book.dropped["prefix_differs"]
    # the tie filter works on the rating columns alone, as the authors' filter does
    frame = pd.concat([pd.read_parquet(p) for p in sorted(hub_cache[1][P.UNIFIED_FEEDBACK].glob("all/train-*"))])
    assert list(rows) == list(frame.reset_index(drop=True).query("conv_A_rating != conv_B_rating").index)
