"""The ablation grid on random-weight tiny models: candidates, scored steps, step-0 sharing,
resuming an interrupted run, the rank tables, and the authors' released rank tables."""

import hashlib
import json
from dataclasses import replace

import pandas as pd
import pytest

from rmbias import ablation, corpora, data, models, preferences, prompts, scoring, training


@pytest.fixture(scope="module")
def tiny_candidates():
    toks = {key: models.load_tokenizer(key) for key in ("tiny-llama", "tiny-gemma2")}
    return toks, ablation.big2_candidates(toks)


def test_normalise_keeps_ascii_strips_and_lowers():
    assert ablation.normalise(" Freedom") == "freedom"
    assert ablation.normalise("\u2581Love\u00e9 ") == "love"


def test_candidates_are_shared_dictionary_variants_placed_by_id(tiny_candidates):
    toks, table = tiny_candidates
    words = ablation.corpora.big2_expanded()
    category = dict(zip(words["word"], words["category"]))
    assert set(table["category"]) == {"Agency", "Communion"}
    assert (table["word"].map(category) == table["category"]).all()
    assert table["token"].is_unique and list(table["token"]) == sorted(table["token"])
    for key, tok in toks.items():
        decoded = [tok.decode([i]) for i in table[f"id_{key}"]]
        assert decoded == table["token"].tolist()
    # the real Llama 3 and Gemma 3 vocabularies share about as many variants as the paper's 1,365
    assert 1200 < len(table) < 1500


def test_candidates_refuse_vocabularies_that_share_nothing():
    class Letters:
        all_special_ids, added_tokens_decoder = [], {}

        def __init__(self, letters):
            self.letters = letters

        def __len__(self):
            return len(self.letters)

        def decode(self, ids):
            return self.letters[ids[0]]

    with pytest.raises(ValueError, match="no expanded Big Two token variant"):
        ablation.big2_candidates({"a": Letters(["x", "love"]), "b": Letters(["y", "z"])})


def test_scored_steps_and_which_sizes_keep_a_trajectory():
    assert ablation.scored_steps(32, 8) == [0, 8, 16, 24, 32]
    assert ablation.scored_steps(10, 4) == [0, 4, 8, 10]
    grid = ablation.Ablation.tiny(sizes=(8, 16), score_every=2)
    assert grid.steps_for(16, 4) == [0, 2, 4]
    assert grid.steps_for(8, 2) == [0, 2]
    assert replace(grid, trajectory_for="all").steps_for(8, 6) == [0, 2, 4, 6]


def test_profiles_have_grids_and_unknown_profiles_are_named():
    assert ablation.Ablation.for_profile("paper").recipe.lora_r == 32
    assert ablation.Ablation.for_profile("demo", seeds=[0, 1, 2, 3]).seeds == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="tiny, demo, paper"):
        ablation.Ablation.for_profile("huge")


def _grid(**changes):
    return ablation.Ablation.tiny(
        **{"bases": ("tiny-llama",), "sizes": (16,), "seeds": (0,), "score_every": 2, **changes}
    )


def _run(grid, candidates, directory, size=16, seed=0):
    return ablation.train_run(
        grid, "tiny-llama", size, seed, candidates, directory / ablation.run_name("tiny-llama", size, seed)
    )


def test_a_run_scores_its_steps_and_its_rank_table_is_tidy(tiny_candidates, tmp_path):
    _, candidates = tiny_candidates
    grid = _grid()
    folder = _run(grid, candidates, tmp_path)
    record = json.loads((folder / "model" / "training.json").read_text())
    steps = training.optimizer_steps(grid.config(16, 0), 16)
    assert record["training"]["optimizer_steps"] == steps == 4
    scores = ablation.read_scores(folder)
    assert sorted(scores["step"].unique()) == [0, 2, 4]
    assert (tmp_path / "step0" / "tiny-llama-n0-s0.parquet").is_file()
    first, last = (scores[scores["step"] == s]["score"].to_numpy() for s in (0, 4))
    assert abs(first - last).max() > 0  # training moved the rewards
    table = ablation.rank_table(scores)
    assert list(table.columns) == ["model", "family", "data_size", "seed", "step", "category", "median_rank", "n_words"]
    assert set(table["family"]) == {"llama"}
    per_step = table.groupby("step")["n_words"].sum()
    assert (per_step == len(candidates)).all()
    assert table["median_rank"].between(1, len(candidates)).all()
    assert not (folder / "model" / "checkpoints").exists()
    assert (folder / "model" / "adapter_model.safetensors").is_file()


def test_runs_of_a_base_share_its_frozen_trunk_and_score_as_without_it(tiny_candidates, tmp_path, monkeypatch):
    """With LoRA on the top layer only (as the demo recipe trains), every scoring of the candidates and
    of the held-out pairs after the first replays the frozen layer's recorded states, across the runs
    of one base; the scores are those of the whole routes."""
    _, candidates = tiny_candidates
    grid = _grid(sizes=(8, 16), seeds=(0, 1), recipe=replace(_grid().recipe, lora_top_layers=1))
    runs = [(16, 0), (8, 0), (16, 1)]  # held-out accuracy for the largest size, as in the demo grid
    ablation._TRUNKS.clear()
    shared = [_run(grid, candidates, tmp_path / "trunk", size=n, seed=s) for n, s in runs]
    trunks = list(ablation._TRUNKS.values())
    assert len(trunks) == 2 and all(t.verified and t.first == 1 and t.states for t in trunks)
    monkeypatch.setattr(ablation, "trunk_for", lambda base, scored: None)
    whole = [_run(grid, candidates, tmp_path / "whole", size=n, seed=s) for n, s in runs]
    for a, b in zip(shared, whole):
        assert json.loads((a / "complete.json").read_text())["trunk"]["below_layer"] == 1
        assert json.loads((b / "complete.json").read_text())["trunk"] is None
        a_scores, b_scores = ablation.read_scores(a), ablation.read_scores(b)
        assert sorted(a_scores["step"].unique()) == sorted(b_scores["step"].unique())
        assert (a_scores["score"] - b_scores["score"]).abs().max() < 1e-5
        a_held, b_held = (training.read_record(f / "model")["heldout"] for f in (a, b))
        for side in ("chosen_scores", "rejected_scores") if b_held else ():
            assert max(abs(x - y) for x, y in zip(a_held[side], b_held[side])) < 1e-5
    assert training.read_record(whole[2] / "model")["heldout"]["n_pairs"] == 16


def test_step_zero_depends_on_seed_not_data_size(tiny_candidates, tmp_path):
    """The premise of sharing step 0 across data sizes: the untrained model is the same."""
    _, candidates = tiny_candidates
    grid = _grid(sizes=(8, 16), trajectory_for="all")
    a = ablation.read_scores(_run(grid, candidates, tmp_path / "a", size=8))
    b = ablation.read_scores(_run(grid, candidates, tmp_path / "b", size=16))
    c = ablation.read_scores(_run(grid, candidates, tmp_path / "c", size=8, seed=1))
    step0 = [t[t["step"] == 0]["score"].to_numpy() for t in (a, b, c)]
    assert (step0[0] == step0[1]).all()
    assert abs(step0[0] - step0[2]).max() > 0


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_candidates, tmp_path, monkeypatch):
    _, candidates = tiny_candidates
    grid = _grid()
    real_score, calls = scoring.score, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # step 0, step 2, then the crash at step 4
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(scoring, "score", failing)
    with pytest.raises(KeyboardInterrupt):
        _run(grid, candidates, tmp_path)
    folder = tmp_path / ablation.run_name("tiny-llama", 16, 0)
    assert not (folder / "complete.json").exists()
    assert sorted(p.name for p in (folder / "scores").glob("*.parquet")) == ["step-00000.parquet", "step-00002.parquet"]
    monkeypatch.setattr(scoring, "score", real_score)
    _run(grid, candidates, tmp_path)
    record = json.loads((folder / "model" / "training.json").read_text())
    assert record["training"]["resumed_from"] == "checkpoint-2"
    assert record["training"]["optimizer_steps"] == 4
    assert sorted(ablation.read_scores(folder)["step"].unique()) == [0, 2, 4]


def test_the_demo_reward_model_is_the_grids_largest_first_seed_run_merged(tiny_candidates, tmp_path, monkeypatch):
    """Chapter 02's reward model of a base is chapter 05's run on the largest size with the first seed:
    trained once in the grid's folder, then merged; the merged model scores as the run's model did at
    its last step, and only that run is trained."""
    monkeypatch.setattr(ablation, "cache_dir", lambda: tmp_path)  # the runs and merged models; the tiny bases stay
    _, candidates = tiny_candidates
    grid = _grid(bases=("tiny-llama", "tiny-gemma2"), sizes=(8, 16), seeds=(1, 2))
    path = ablation.demo_reward_model("tiny-llama", grid)
    assert path == ablation.reward_model_path("tiny-llama", grid) and (path / "complete.json").is_file()
    runs = ablation.grid_directory(grid)
    assert sorted(p.name for p in runs.iterdir() if (p / "complete.json").is_file()) == ["tiny-llama-n16-s1"]
    record = training.read_record(path)
    assert record["merged"] and (record["config"]["n_train"], record["config"]["seed"]) == (16, 1)
    model, tokenizer = training.load_trained(path)
    assert tokenizer.pad_token == record["pad_token"]
    text = prompts.select([grid.prompt])["text"].iloc[0]
    sequences = scoring.vocab_sequences(tokenizer, text, candidates["id_tiny-llama"].tolist(), grid.recipe.chat)
    merged = scoring.score(model, sequences, route="cached", batch_size=64).values.numpy()
    last = ablation.read_scores(runs / "tiny-llama-n16-s1")
    last = last[last["step"] == last["step"].max()]["score"].to_numpy()
    assert abs(merged - last).max() < 1e-4 and abs(last).max() > 0
    # asked again, nothing is trained: the merged copy is found
    monkeypatch.setattr(ablation, "train_reward_model", lambda *a, **k: pytest.fail("trained twice"))
    assert ablation.demo_reward_model("tiny-llama", grid) == path
    with pytest.raises(ValueError, match="not a base of the demo grid"):
        ablation.demo_reward_model("tiny-llama", _grid(bases=("tiny-gemma2",)))


def test_a_run_another_process_holds_is_waited_for_not_trained_twice(tiny_candidates, tmp_path, monkeypatch):
    """Chapters 02 and 05 side by side may ask for the same run: the second waits for the first's
    lock and then takes the finished run."""
    import threading
    import time

    _, candidates = tiny_candidates
    folder = tmp_path / ablation.run_name("tiny-llama", 16, 0)
    monkeypatch.setattr(ablation, "train_reward_model", lambda *a, **k: pytest.fail("trained twice"))
    found = []
    with data.build_lock(folder):
        waiting = threading.Thread(target=lambda: found.append(_run(_grid(), candidates, tmp_path)))
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive() and not found  # held by the lock
        folder.mkdir()
        (folder / "complete.json").write_text("{}")  # the other process finishes
    waiting.join(timeout=30)
    assert found == [folder]


def test_rank_changes_average_variants_and_compare_first_trained_with_last_step():
    rows = []
    for step, scores in ((0, [9, 9, 9, 9]), (2, [4, 3, 2, 1]), (4, [1, 2, 3, 4])):
        for (token, word, cat), score in zip(
            [
                (" Love", "love", "Communion"),
                ("love", "love", "Communion"),
                (" win", "win", "Agency"),
                ("Pow", "pow", "Agency"),
            ],
            scores,
        ):
            rows.append({"token": token, "word": word, "category": cat, "step": step, "score": float(score)})
    table = pd.DataFrame(rows).assign(base="m", size=8, seed=0)
    moved = ablation.rank_changes(table).set_index("word")
    # step 2: love 3.5 > win 2 > pow 1; step 4: pow 4 > win 3 > love 1.5
    assert moved.loc["love", "rank_change"] == 1 - 3
    assert moved.loc["pow", "rank_change"] == 3 - 1
    assert set(moved["first"]) == {2} and set(moved["last"]) == {4}


def test_released_rank_tables_and_their_oddities():
    table, report = ablation.released_rank_tables()
    assert ["rank_results_uf_13.csv", "rank_results_uf_27.csv"] in report["identical_files"]
    uf100 = report["files"]["rank_results_uf_100.csv"]
    assert uf100["duplicate_rows"] > 60000 and uf100["conflicting_duplicates"] == 0
    assert report["files"]["rank_results_uf_27.csv"]["final_checkpoint"] == 3314
    assert set(table["family"]) == {"gemma", "llama", "qwen"}
    assert (table.loc[table["method"] == "GRM", "checkpoint"] == 1).all()
    assert not table.duplicated(["file", "model_id", "category", "checkpoint"]).any()


def test_hub_preference_records_become_checked_pairs():
    user = {"role": "user", "content": "Hi"}
    good, bad = {"role": "assistant", "content": "Hello!"}, {"role": "assistant", "content": "Go away."}
    pair = preferences.hub_record_pair({"chosen": [user, good], "rejected": [user, bad]}, "messages")
    assert pair["chosen"][-1]["content"] == "Hello!"
    rated = {"conv_A": [user, bad], "conv_B": [user, good], "conv_A_rating": 1, "conv_B_rating": 5}
    assert preferences.hub_record_pair(rated, "rated")["chosen"][-1]["content"] == "Hello!"
    with pytest.raises(preferences.PairError, match="tie"):
        preferences.hub_record_pair({**rated, "conv_B_rating": 1}, "rated")
    parsed = preferences.load_hub_pairs(
        "llm-blender/Unified-Feedback", records=[rated, {**rated, "conv_B_rating": 1}, {**rated, "conv_B": [user]}]
    )
    assert len(parsed.pairs) == 1 and parsed.dropped == {"no_final_reply": 1, "tie": 1}
    with pytest.raises(ValueError, match="unknown preference dataset"):
        preferences.load_hub_pairs("someone/else")


def _tiny_paper(**changes):
    """The paper grid (the authors' recipe, data and candidates) on tiny random-weight models, in float32."""
    paper = ablation.Ablation.paper(**changes)
    return replace(
        paper,
        bases=("tiny-llama",),
        seeds=(0,),
        score_every=1,
        batch_size=512,
        recipe=replace(paper.recipe, dtype="float32", per_device_batch=2, grad_accum=2),
    )


def test_the_grids_keep_their_cache_keys():
    """Fields added for the paper grid and recipe leave the tiny and demo grids' keys as they were;
    the recipe's split_by_length (on in both) gives them new keys, and off, the earlier ones."""
    blob = lambda grid: hashlib.sha256(json.dumps(grid.key_dict(), sort_keys=True, default=str).encode()).hexdigest()[
        :10
    ]  # noqa: E731
    padded = lambda grid: replace(grid, recipe=replace(grid.recipe, split_by_length=False))  # noqa: E731
    assert blob(padded(ablation.Ablation.tiny())) == "ea15cdf0b3"
    assert blob(padded(ablation.Ablation.demo())) == "62a349e840"  # two seeds since the CI budget ran out
    assert blob(ablation.Ablation.tiny()) == "e274b5b0b4" and blob(ablation.Ablation.demo()) == "52186cc92f"
    assert "candidates" in ablation.Ablation.paper().key_dict()
    authors = ablation.Ablation.for_profile("demo", tokenisation="authors", chat_date=None)
    assert authors.recipe.chat.tokenisation == "authors" and blob(authors) != blob(ablation.Ablation.demo())
    with pytest.raises(ValueError, match="tokenisation"):
        ablation.Ablation.for_profile("tiny", tokenisation="double")


def test_the_authors_candidates_are_their_1365_variants():
    table = ablation.authors_candidates()
    assert len(table) == 1365  # the paper's count, from token_intersection.csv
    assert table["token"].is_unique and table["token"].map(str.isascii).all()
    assert set(table["category"]) == {"Agency", "Communion"}
    shared = set(corpora.token_intersection())
    assert set(table["token"]) <= shared
    toks = {key: models.load_tokenizer(key) for key in ("tiny-llama", "tiny-gemma2")}
    placed = ablation.big2_candidates(toks, strings=table["token"].tolist())
    assert set(placed["token"]) <= set(table["token"])
    assert placed.attrs["missing"]["tiny-llama"] == 0  # the Llama 3 vocabulary is one of the three
    assert len(placed) == 1365 - placed.attrs["missing"]["tiny-gemma2"]  # tiny-gemma2 has Gemma 3's
    grid = _tiny_paper()
    assert grid.candidates == "authors" and ablation.Ablation.tiny().candidates == "bases"


def test_sizes_are_checked_against_the_data_before_any_run(hub_cache, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("no model may load before the sizes are checked")

    monkeypatch.setattr(models, "load_reward_model", never)
    monkeypatch.setattr(models, "load_tokenizer", never)
    grid = ablation.Ablation.for_profile("paper", data=preferences.SKYWORK, sizes=(106_000, 13_000))
    with pytest.raises(ValueError, match=r"SIZES asks for 13,000, 106,000 training pairs.*offers 47.*SIZES=None"):
        ablation.run_grid(grid, tmp_path)
    with pytest.raises(ValueError, match="SIZES asks for 5,000"):
        ablation.prepare(ablation.Ablation.tiny(sizes=(5000,)))
    # Skywork's default: the whole train split less the authors' 0.5% held out, as they trained
    skywork, pool = ablation.prepare(ablation.Ablation.for_profile("paper", data=preferences.SKYWORK))
    n = len(preferences.load_hub_split(preferences.SKYWORK, "train"))
    assert skywork.sizes == (pool.n_available,) == (n - len(pool.heldout),) and skywork.strides == (1,)
    pairs, _, info = training.prepare_pairs(skywork.config(skywork.sizes[0], 0), pool=pool)
    assert sorted(p["index"] for p in pairs) == sorted(pool.rows) and info["draw"]["stride"] == 1


def test_the_hub_dataset_is_read_once_per_grid(hub_cache, tmp_path, monkeypatch, tiny_candidates):
    _, candidates = tiny_candidates
    reads, snapshots, trained = [], [], []
    real_split, real_snapshot = preferences.load_hub_split, preferences.hub_snapshot
    monkeypatch.setattr(preferences, "load_hub_split", lambda d, s, f=None: reads.append(s) or real_split(d, s, f))
    monkeypatch.setattr(preferences, "hub_snapshot", lambda d: snapshots.append(d) or real_snapshot(d))

    def fake_training(base, train, config, output_dir, **kwargs):
        trained.append((base, config.n_train, config.stride, [p["index"] for p in train]))
        output_dir.mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(ablation, "train_reward_model", fake_training)
    grid = replace(_tiny_paper(), bases=("tiny-llama", "tiny-gemma2"))
    folders = ablation.run_grid(grid, tmp_path, candidates, progress=False)
    assert len(folders) == len(trained) == 8  # 2 bases x 4 strides
    assert reads == ["train", "val"] and snapshots == [preferences.UNIFIED_FEEDBACK]
    strides = {(n, k) for _, n, k, _ in trained}
    untied = preferences.untied_rows(real_split(preferences.UNIFIED_FEEDBACK, "train"))
    assert strides == {(len(range(0, len(untied), k)), k) for k in (64, 32, 16, 8)}
    for _, n, k, rows in trained:
        assert rows == [int(r) for r in untied[::k]][:n]  # the authors' every k-th untied pair


def test_the_paper_recipe_trains_and_scores_a_tiny_model(hub_cache, tmp_path):
    """The paper grid's path end to end on a random-weight model and the stand-in Unified-Feedback
    snapshot: the authors' recipe (LoRA r=32 with dropout on every layer, gradient accumulation, two
    epochs, gradient checkpointing, two BOS tokens, clipping at 5.0, transformers 4's AdamW), every
    k-th untied pair, the val split held out, the authors' candidates, every size keeping a trajectory."""
    grid, pool = ablation.prepare(_tiny_paper())
    assert grid.trajectory_for == "all" and grid.recipe.effective_batch == 4
    size = max(grid.sizes)
    candidates = ablation.grid_candidates(grid).iloc[::20].reset_index(drop=True)
    folder = ablation.train_run(grid, "tiny-llama", size, 0, candidates, tmp_path / "run", pool=pool)
    record = json.loads((folder / "model" / "training.json").read_text())
    assert record["config"]["lora_r"] == 32 and record["config"]["lora_top_layers"] is None
    assert record["config"]["max_grad_norm"] == 5.0 and record["optimizer"] == "LegacyAdamW"
    assert record["chat_format"]["tokenisation"] == "authors"
    steps = training.optimizer_steps(grid.config(size, 0), size)
    assert record["training"]["optimizer_steps"] == steps
    assert sorted(ablation.read_scores(folder)["step"].unique()) == list(range(steps + 1))
    assert record["heldout"]["n_pairs"] == len(pool.heldout) > 0  # the val split
    data = record["data"]
    assert data["draw"]["selection"] == "every-kth" and data["draw"]["stride"] == 8
    assert data["source"]["revision"] == preferences.UNPINNED and data["source"]["snapshot_commit"]
    adapter = json.loads((folder / "model" / "adapter_config.json").read_text())
    assert adapter["lora_dropout"] == 0.05 and adapter["r"] == 32
    # the other data the paper profile offers: Skywork's whole set
    with pytest.raises(ValueError, match="the paper grid trains on"):
        ablation.Ablation.paper(data=preferences.HH_HARMLESS_TEST)


def test_a_paper_recipe_run_on_local_file_data(tiny_candidates, tmp_path):
    """The paper recipe on the hh-rlhf file (as the real-shape tests run it): the authors' held-out rule
    falls back to the book's, and the steps are planned as the Trainer counts them."""
    _, candidates = tiny_candidates
    paper = ablation.Ablation.paper()
    # 6 pairs in batches of 2 with 2 accumulated: 3 batches an epoch, so the last step accumulates one
    # batch only; the Trainer counts it (2 steps an epoch), flooring would plan 1 and miss the last
    grid = replace(
        paper,
        bases=("tiny-llama",),
        sizes=(6,),
        seeds=(0,),
        score_every=1,
        batch_size=512,
        recipe=replace(
            paper.recipe,
            data=preferences.HH_HARMLESS_TEST,
            n_heldout=8,
            dtype="float32",
            per_device_batch=2,
            grad_accum=2,
        ),
    )
    folder = ablation.train_run(grid, "tiny-llama", 6, 0, candidates, tmp_path / "run")
    record = json.loads((folder / "model" / "training.json").read_text())
    assert record["training"]["optimizer_steps"] == training.optimizer_steps(grid.config(6, 0), 6) == 4
    assert record["training"]["steps_per_epoch"] == 2
    assert sorted(ablation.read_scores(folder)["step"].unique()) == [0, 1, 2, 3, 4]
    assert record["heldout"]["n_pairs"] == 8
