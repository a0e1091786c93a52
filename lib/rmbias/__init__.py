"""rmbias: the small library behind the book "Reward Models Inherit Value Biases from Pretraining".

One module per idea: :mod:`~rmbias.data` (external data), :mod:`~rmbias.corpora` (word lists),
:mod:`~rmbias.lexicons` (frequency and valence norms), :mod:`~rmbias.prompts` (the 54 prompts),
:mod:`~rmbias.profiles` (tiny / demo / paper), :mod:`~rmbias.models` (naming and loading models),
:mod:`~rmbias.tokens` (tokenizer coverage), :mod:`~rmbias.artifacts` (results and provenance),
:mod:`~rmbias.plots` (figure style) and :mod:`~rmbias.book` (executing the chapters).
"""

__version__ = "0.1.0"
