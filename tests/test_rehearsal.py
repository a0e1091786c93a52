"""A rehearsal of the real paper-profile run: chapters 01 to 07 executed by papermill with the paper
profile's own model ids, settings and code paths, every hub model and dataset served from a local
Hugging Face cache of stand-ins in the published layouts (random weights at a narrow width, real
tokenizers of the same families with the published chat formats; rmbias.standins), offline, on the
CPU. Only the amount of work is cut (a few prompts and words, a small vocabulary sample, a tiny
training grid): any crash a real run would hit in the chapters' own cells shows here."""

import json
import os

import nbformat
import pytest

from rmbias import book, registry
from rmbias.profiles import PROFILES

CHAPTERS = ["01", "02", "03", "04", "05", "06", "07"]
CUT = {
    "PROMPTS": ["greatest_ever_one", "best_world_single", "worst_time_please"],
    "FORCED_PROMPTS": ["greatest_ever_one"],
    "MAX_WORDS": 6,
    "VOCAB_LIMIT": 64,
    "VALIDATION_STEPS": 2,
    "SIZES": [16],
    "SEEDS": [0],
    "SCORE_EVERY": 1,
    "N_PERMUTATIONS": 199,
    "DOSES": [1.0],
    "PLANT_STEPS": 1,
    "DOCUMENTS": 16,
    # chapter 07 plants the Gemma base alone here (its largest vocabulary and eager attention; both bases
    # took four minutes), chapter 05 trains from both, and test_planting reads two bases' conditions
    "PLANT_BASES": ["google/gemma-2-2b-it"],
}


@pytest.fixture(scope="session")
def rehearsed(paper_hub, project_copy, tmp_path_factory):
    """The paper profile's chapters run once against the stand-ins; the executed notebooks' folder."""
    scratch = tmp_path_factory.mktemp("rehearsal")
    env = {
        "HF_HUB_CACHE": str(paper_hub),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "RMBIAS_CACHE": str(scratch / "cache"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the chapters' kernels inherit them
    try:
        book.run(
            "paper",
            only=CHAPTERS,
            book_dir=scratch / "book",
            results_dir=scratch / "results",
            cwd=project_copy,
            overrides=CUT,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return scratch


@pytest.mark.slow
def test_the_paper_profile_runs_end_to_end_on_stand_ins(rehearsed):
    for chapter in book.notebook_sources(book.ROOT):
        if not chapter.stem.startswith(tuple(CHAPTERS)):
            continue
        nb = nbformat.read(rehearsed / "book" / f"{chapter.stem}.ipynb", as_version=4)
        errors = [
            o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert not errors, chapter.stem
        summary = json.loads((rehearsed / "results" / "paper" / chapter.stem / "summary.json").read_text())
        assert summary["profile"] == "paper"


@pytest.mark.slow
def test_the_rehearsal_scored_every_paper_reward_model_as_the_authors_did(rehearsed):
    scores = rehearsed / "results" / "paper" / "02_rm_scoring" / "live_scores"
    paper = PROFILES["paper"]
    for key in paper.reward_models:
        meta = json.loads(next((scores / key.replace("/", "_")).glob("*.meta.json")).read_text())
        assert meta["revision"] == (registry.spec(key).revision or "unpinned (hub main)")
        assert meta["tokenisation"] == "authors" and meta["date"] == "unset"
        bos = "<|begin_of_text|>" if registry.family_of(key) == "llama" else "<bos>"
        assert meta["rendered_chat"].startswith(bos + bos)  # the authors' two BOS tokens
    summary = json.loads((rehearsed / "results" / "paper" / "02_rm_scoring" / "summary.json").read_text())
    assert summary["numbers"]


@pytest.mark.slow
def test_the_rehearsal_drew_the_released_figures_and_held_its_traces_against_them(rehearsed):
    """The stand-in release (rmbias.standins.write_logprob_standins) in the hub cache: chapter 03 draws
    Figure 2 from it and compares its own traces, chapter 04 draws Table 1 and Figure 3 over all 21
    instruction-tuned pairs; chapter 05's checkpoint files are not in the mirror, and it says so."""
    results = rehearsed / "results" / "paper"
    for pair in (0, 1):
        assert (results / "03_logit_tracing" / f"released_medians_pair{pair}.parquet").is_file()
    tracing = json.loads((results / "03_logit_tracing" / "summary.json").read_text())["numbers"]
    assert len(tracing["released_comparison"]) == len(PROFILES["paper"].language_models)
    probed = tracing["rendering_probe"]
    assert set(probed) == {m for m in registry.FIGURE2_PAIRS[1]}
    assert all(row["n_bos"] in (1, 2) for rows in probed.values() for row in rows)
    implicit = json.loads((results / "04_implicit_rms" / "summary.json").read_text())["numbers"]
    assert implicit["freedom_vs_love_released"]["pairs"] == 21 and not implicit["released_missing"]
    assert implicit["table1_released"]["rows"]
    ablation = json.loads((results / "05_ablation_training" / "summary.json").read_text())["numbers"]
    assert set(ablation["figure5_released_missing"]) == {"gemma", "llama", "qwen"}
    statistics = json.loads((results / "06_stats" / "summary.json").read_text())["numbers"]
    assert [row["pair"] for row in statistics["figure2_released"]] == ["released_pair0", "released_pair1"]
    assert {row["prompts"] for row in statistics["figure2_released"]} == {54}
