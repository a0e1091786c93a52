"""rmbias: the small library behind the book "Reward Models Inherit Value Biases from Pretraining".

One module per idea, in five layers. A module imports only from its own layer or the layers above
it in this list (``tests/test_layout.py`` checks this map against the code, with no import circles).

Layer 1, foundations (no other rmbias module):
    keys               fingerprints and slugs: how cache folders and result files are named
    artifacts          results on disk: tables, figures and summaries written atomically, with provenance
    data               external data (the authors' release, hh-rlhf) at pinned commits, hashed, cached
    progress           progress lines while a chapter runs, kept out of the rendered page
    glue               a chapter's numbers into the book's text
    placement          where weights go: one device, several GPUs, 8 or 4 bits
    heads              the reward heads the hub ships as remote code (ArmoRM, QRM, URM), written here
    stats              the paper's tests and the checks that go further
    plots              figure style and the figures more than one chapter draws
    prompts            the 54 prompts
    lexicons           word frequency and valence norms
    browser            the rendered book checked in headless Chromium
    colab              installing the book into a running Colab runtime

Layer 2, the study's materials:
    corpora            the Big Two and Moral Foundations word lists
    preferences        hh-rlhf and the other preference data as pairs
    registry           every model by a short key: specs and families, nothing that loads them
    architectures      the published shapes of the paper's models, for stand-ins and memory estimates
    ranks              median ranks, the study's unit of analysis
    multiverse         the paper's claims under every defensible analysis choice
    release            the authors' released reward-model scores as tidy tables

Layer 3, models and engines:
    scoring            scoring replies with a reward model, fast and faithfully
    models             loading any registry model, whatever its source, checked
    tokens             how words map onto vocabularies
    memory             whether the requested models fit, before any loads
    logprobs           logit tracing: what a language model would say first
    implicit           the reward two language models imply between them

Layer 4, the runs and their settings:
    profiles           tiny / demo / paper: one parameter selects every setting
    training           Bradley-Terry reward-model training, one recipe dataclass
    rewards            scoring runs over words or the vocabulary, resumable
    ablation           reward models from different bases on identical data, through training
    sft                planting a known preference to validate the implicit-reward metrics
    planting           planting a value in a base by continued training, to test inheritance (chapter 07)
    released_logprobs  the authors' released log-probabilities, read as traces

Layer 5, the book and its rehearsal:
    chapter            what every chapter opens with: settings, results folder, numbers glued and recorded
    book               executing the chapters and placing them in the book
    standins           local stand-ins for the paper profile's hub files, for the offline rehearsal
"""

__version__ = "0.1.0"
