"""Scoring candidate replies with a reward model, fast and faithfully.

Every candidate is scored as the assistant turn of a two-turn chat rendered with the reward model's
own chat template. Candidates are either given words or sentences (:func:`chat_ids`), or every
single token of the vocabulary placed into the reply by id (:func:`vocab_sequences`), the
predecessor paper's exhaustive search.

Three routes compute the same scores:

``cached`` (the engine)
    All candidates share the rendered prompt, so the shared prefix runs once, its key/value cache is
    expanded to the batch size once, and only each candidate's few suffix tokens run against it.
``full`` (the reference)
    Every whole chat through the model, right-padded.
``model``
    The model's own forward (for the heads of :mod:`rmbias.heads`, their own pooling and gating).
    Candidates are grouped by length, so no batch needs padding and a model's own pooling cannot be
    misled by a pad token.

A model in training whose lower layers are frozen (the demo recipe trains LoRA on the top decoder
layers only) scores the same candidates again and again (chapter 05's checkpoints): a
:class:`FrozenTrunk` keeps what the frozen layers make of the candidates the first time, and later
scorings run only the layers above them.

Plain ``*ForSequenceClassification`` reward models and the gated heads of :mod:`rmbias.heads`
(ArmoRM, QRM, URM's gated reward) run through all three; a gate that reads the prompt is computed
once per prompt by the engine.

Traps handled here rather than left to the model class:

- The chat is tokenised by the template itself (``apply_chat_template(tokenize=True)``), never
  rendered to text and tokenised again, which would add a second BOS token; the authors' route,
  which did exactly that, is the ``"authors"`` tokenisation of :class:`ChatFormat`.
- The score is read at the last real token of each chat, found from the attention mask. Sequence-
  classification heads in transformers find it from the pad token instead, which picks the wrong
  position when the pad token also ends the chat (SmolLM2's pad token is its end-of-turn token).
- Llama 3.2 templates print the day of the run when no date is given. How a chat is rendered is a
  setting (:class:`ChatFormat`): a fixed date (:data:`FIXED_DATE`) or none at all (``"unset"``, as
  the authors ran, so the day of the run), and one BOS token or the authors' two.
- A GPU out-of-memory error halves the batch and retries; the batch size used is reported.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from .placement import input_device, is_oom

# A date for templates that print one (Llama 3.1 / 3.2), so scores do not depend on the day they
# were computed; "unset" passes none, as the authors did (a Llama 3.2 template then prints the day).
FIXED_DATE = "26 Jul 2024"
UNSET_DATE = "unset"
# "single-bos": the template tokenises the chat itself (one BOS). "authors": the chat is rendered to
# text and that text tokenised again, as the authors' scoring and training code did (two BOS tokens
# for templates that write their own).
TOKENISATIONS = ("single-bos", "authors")
ROUTES = ("cached", "full", "model")


class ScoringError(RuntimeError):
    """Scoring could not proceed; the message says why and what to do."""


@dataclass(frozen=True)
class ChatFormat:
    """How a chat becomes token ids: the ``tokenisation`` route and the ``date`` a template prints.

    Both change every score a little, so both are settings of the profile (the paper profile's are
    the authors': ``ChatFormat("authors", UNSET_DATE)``), recorded with every result and part of the
    key it is cached under.
    """

    tokenisation: str = "single-bos"
    date: str = FIXED_DATE

    def __post_init__(self) -> None:
        if self.tokenisation not in TOKENISATIONS:
            raise ValueError(f"unknown tokenisation {self.tokenisation!r}: use one of {', '.join(TOKENISATIONS)}")
        if not isinstance(self.date, str) or not self.date:
            raise ValueError(
                f"chat date {self.date!r} must be a date as templates print it (e.g. {FIXED_DATE!r}) or {UNSET_DATE!r}"
            )

    def template_kwargs(self) -> dict[str, str]:
        """The variables handed to the chat template: the date, unless it is left unset."""
        return {} if self.date == UNSET_DATE else {"date_string": self.date}

    def as_dict(self) -> dict[str, str]:
        return {"tokenisation": self.tokenisation, "date": self.date}


DEFAULT_CHAT = ChatFormat()


def render_chat(
    tokenizer, messages: Sequence[dict[str, str]], chat: ChatFormat = DEFAULT_CHAT, add_generation_prompt: bool = False
) -> str:
    """The chat as text, as its template writes it (special tokens included)."""
    if not tokenizer.chat_template:
        raise ValueError(
            f"tokenizer {tokenizer.name_or_path!r} has no chat template; give the model's "
            "ModelSpec a chat_template (see rmbias.models)"
        )
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt, **chat.template_kwargs()
    )


def encode_chat(
    tokenizer, messages: Sequence[dict[str, str]], chat: ChatFormat = DEFAULT_CHAT, add_generation_prompt: bool = False
) -> list[int]:
    """Token ids of a chat (any number of turns) as ``chat`` says to make them.

    ``single-bos``: tokenised by the template itself, with exactly the special tokens it writes.
    ``authors``: rendered to text, then tokenised with the tokenizer's own special tokens added (a
    second BOS where the template writes one). ``add_generation_prompt`` ends the ids with the
    header of the assistant's turn, where the model's reply would begin (logit tracing reads the
    next-token distribution there).
    """
    if chat.tokenisation == "authors":
        return list(tokenizer(render_chat(tokenizer, messages, chat, add_generation_prompt))["input_ids"])
    if not tokenizer.chat_template:
        render_chat(tokenizer, messages, chat)  # raises the missing-template error
    out = tokenizer.apply_chat_template(
        list(messages),
        tokenize=True,
        return_dict=True,
        add_generation_prompt=add_generation_prompt,
        **chat.template_kwargs(),
    )
    return list(out["input_ids"])


def chat_ids(tokenizer, prompt: str, response: str, chat: ChatFormat = DEFAULT_CHAT) -> list[int]:
    """Token ids of the two-turn chat (user ``prompt``, assistant ``response``)."""
    return encode_chat(
        tokenizer, [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], chat
    )


def word_sequences(tokenizer, prompt: str, words: Sequence[str], chat: ChatFormat = DEFAULT_CHAT) -> list[list[int]]:
    """The chat ids of each word (or sentence) as the reply to ``prompt``."""
    if len(words) == 0:
        raise ValueError("no candidates to score: the word list is empty")
    return [chat_ids(tokenizer, prompt, w, chat) for w in words]


# --- the vocabulary route --------------------------------------------------------------------------


def reply_slot(tokenizer, prompt: str, chat: ChatFormat = DEFAULT_CHAT) -> tuple[list[int], list[int]]:
    """The chat's token ids before and after a one-token reply.

    Found by rendering two different one-token replies and locating the single position where the
    renderings differ; a template that changes anything else with the reply is refused.
    """
    probes = [chat_ids(tokenizer, prompt, text, chat) for text in ("A", "B")]
    if len(probes[0]) != len(probes[1]):
        raise ScoringError(
            "the chat template renders one-token replies to different lengths; the "
            "vocabulary route needs a template that inserts the reply verbatim"
        )
    where = [i for i, (a, b) in enumerate(zip(*probes)) if a != b]
    if len(where) != 1:
        raise ScoringError(f"expected the replies 'A' and 'B' to differ in one token, found {len(where)}")
    i = where[0]
    return probes[0][:i], probes[0][i + 1 :]


def vocabulary_ids(tokenizer) -> list[int]:
    """Every token id of the tokenizer except its special and added tokens, in id order."""
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    return [i for i in range(len(tokenizer)) if i not in special]


def vocab_sequences(
    tokenizer, prompt: str, token_ids: Sequence[int], chat: ChatFormat = DEFAULT_CHAT
) -> list[list[int]]:
    """Chats whose reply is exactly one vocabulary token, placed by id (no decode and re-encode)."""
    if len(token_ids) == 0:
        raise ValueError("no candidates to score: the token list is empty")
    before, after = reply_slot(tokenizer, prompt, chat)
    return [before + [int(t)] + after for t in token_ids]


def round_trips(tokenizer, prompt: str, token_ids: Sequence[int], chat: ChatFormat = DEFAULT_CHAT) -> list[bool]:
    """Whether decoding each token, rendering it as the reply and tokenising again gives back the
    same chat (the predecessor paper's route). Templates that trim the reply, and tokens that merge
    with their neighbours, fail; the vocabulary route scores them by id regardless."""
    by_id = vocab_sequences(tokenizer, prompt, token_ids, chat)
    return [chat_ids(tokenizer, prompt, tokenizer.decode([int(t)]), chat) == seq for t, seq in zip(token_ids, by_id)]


# --- the three routes ------------------------------------------------------------------------------


def split_shared_prefix(sequences: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Split token sequences into their longest common prefix and the remaining suffixes.

    At least one token is left in every suffix, so each candidate has a position to score.
    """
    if not sequences:
        raise ValueError("no candidates to score: the word list is empty")
    shortest = min(len(s) for s in sequences)
    n = 0
    while n < shortest - 1 and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return list(sequences[0][:n]), [list(s[n:]) for s in sequences]


class _Reader:
    """How a reward model's scores are read from its final hidden states.

    ``body`` is the transformer that makes them. ``reward(last, gate)`` maps the states at each row's
    last real token (and, for gated heads, at its gate token) to one float32 reward per row:
    output column 0 of a ``*ForSequenceClassification`` ``score`` head, or a head of
    :mod:`rmbias.heads`, whose ``gate_position(ids)`` says where in a row its gate reads (None: no gate).
    Under a peft wrapper, the wrapped model's parts, with its LoRA layers in place.
    """

    def __init__(self, model):
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        if hasattr(model, "gate_position") and hasattr(model, "reward"):  # rmbias.heads
            self.body, self.gate_position = model.model, model.gate_position
            self.reward = lambda last, gate: model.reward(last, gate).score
            return
        head = getattr(model, "score", None)
        body = getattr(model, model.base_model_prefix, None)
        if head is None or body is None:
            raise TypeError(
                f"{type(model).__name__} has no `score` head on a `{model.base_model_prefix}` body and "
                "is not a head of rmbias.heads; register its layout in rmbias.models"
            )
        self.body, self.gate_position = body, None
        self.reward = lambda last, gate: head(last).float()[:, 0]

    def gates(self, rows: Sequence[Sequence[int]], prefix: Sequence[int] = ()) -> list[int] | None:
        """Each row's gate position in the whole chat (``prefix`` + row), or None for plain heads."""
        if self.gate_position is None:
            return None
        return [self.gate_position(list(prefix) + list(row)) for row in rows]


def _pad_id(model) -> int:
    """Any id works for padding: padded positions are masked and never pooled."""
    return model.config.pad_token_id if model.config.pad_token_id is not None else 0


def pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id rows as one right-padded tensor, with the mask of real positions."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _last_states(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The hidden state at the last real token of each right-padded row."""
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last.to(hidden.device)]


class _FullRoute:
    """Reference route: each whole chat through the model, right-padded (with a
    :class:`FrozenTrunk`: recorded below the first trained layer, or replayed from there)."""

    def __init__(self, model, sequences, trunk: FrozenTrunk | None = None):
        self.reader = _Reader(model)
        self.device, self.pad_id, self.rows = input_device(model), _pad_id(model), sequences
        self.trunk, self.batch_size = trunk, None

    def prepare(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def run(self, start: int, stop: int) -> torch.Tensor:
        rows = self.rows[start:stop]
        ids, mask = pad_right(rows, self.pad_id)
        with self.trunk.batch(self.reader.body, (start, stop, self.batch_size)) if self.trunk else nullcontext():
            hidden = self.reader.body(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        hidden = hidden.last_hidden_state
        gates = self.reader.gates(rows)
        gate = None if gates is None else hidden[torch.arange(len(rows), device=hidden.device), torch.tensor(gates)]
        return self.reader.reward(_last_states(hidden, mask), gate)


class PrefixCache:
    """The key/value cache of a prefix that every row shares, computed once.

    ``module`` is what runs the rows: a transformer body (reward scoring reads its hidden states)
    or a causal language model (teacher forcing reads its logits). The cache is expanded to the
    batch size once per :meth:`expand` (not per batch); each call works on a shallow copy of it. For a
    body, :attr:`hidden` keeps the prefix's own final hidden states (a gated head reads its gate
    there, once for every candidate). A short final batch is filled up with repeats of its last row, so every batch has the same shape
    and the expanded cache always fits. Rows are right-padded and get explicit position ids that
    continue after the prefix.
    """

    def __init__(self, module, prefix: Sequence[int], pad_id: int):
        self.module, self.pad_id, self.device = module, pad_id, input_device(module)
        self.n_prefix = len(prefix)
        self.cache, self.expanded, self.batch_size, self.hidden = None, None, None, None
        if self.n_prefix:
            ids = torch.tensor([list(prefix)], device=self.device)
            out = module(input_ids=ids, use_cache=True)
            self.cache = out.past_key_values
            hidden = getattr(out, "last_hidden_state", None)  # a body's states; a language model has none
            self.hidden = None if hidden is None else hidden[0]

    def expand(self, batch_size: int) -> None:
        """Make the cache hold ``batch_size`` copies of the prefix (done again after an OOM halving)."""
        self.batch_size = batch_size
        self.expanded = None
        if self.cache is not None:
            self.expanded = copy.deepcopy(self.cache)
            self.expanded.batch_repeat_interleave(batch_size)

    def __call__(self, rows: Sequence[Sequence[int]]):
        """Run ``rows`` (at most the expanded batch size) after the prefix.

        Returns the module's output for the full (filled-up) batch and the rows' right-padding mask;
        the caller keeps the first ``len(rows)`` entries.
        """
        rows = list(rows)
        rows += [rows[-1]] * (self.batch_size - len(rows))
        ids, mask = pad_right(rows, self.pad_id)
        batch = len(rows)
        full_mask = torch.cat([torch.ones((batch, self.n_prefix), dtype=torch.long), mask], dim=1)
        positions = torch.arange(self.n_prefix, self.n_prefix + ids.shape[1]).expand(batch, -1)
        cache = copy.copy(self.expanded) if self.expanded is not None else None
        if cache is not None:  # new layer objects that share the expanded tensors (concatenation copies)
            cache.layers = [copy.copy(layer) for layer in self.expanded.layers]
        out = self.module(
            input_ids=ids.to(self.device),
            attention_mask=full_mask.to(self.device),
            position_ids=positions.to(self.device),
            past_key_values=cache,
            use_cache=cache is not None,
        )
        return out, mask


class _CachedRoute:
    """The engine: the shared prefix once (:class:`PrefixCache`); per batch, only the suffixes. A
    gate that falls in the prefix is read from the prefix's states, computed once. With a
    :class:`FrozenTrunk`, each batch is recorded below the first trained layer the first time and
    replayed from there afterwards."""

    def __init__(self, model, sequences, trunk: FrozenTrunk | None = None):
        self.reader = _Reader(model)
        prefix, self.rows = split_shared_prefix(sequences)
        self.prefix = PrefixCache(self.reader.body, prefix, _pad_id(model))
        self.gates = self.reader.gates(self.rows, prefix)
        self.trunk, self.batch_size = trunk, None

    def prepare(self, batch_size: int) -> None:
        self.prefix.expand(batch_size)
        self.batch_size = batch_size

    def run(self, start: int, stop: int) -> torch.Tensor:
        rows = self.rows[start:stop]
        with self.trunk.batch(self.reader.body, (start, stop, self.batch_size)) if self.trunk else nullcontext():
            out, mask = self.prefix(rows)
        hidden = out.last_hidden_state[: len(rows)]
        gate = None
        if self.gates is not None:
            n = self.prefix.n_prefix
            gate = torch.stack(
                [self.prefix.hidden[g] if g < n else hidden[i, g - n] for i, g in enumerate(self.gates[start:stop])]
            )
        return self.reader.reward(_last_states(hidden, mask[: len(rows)]), gate)


class FrozenTrunk:
    """What a model's frozen lower layers make of a fixed set of candidates, kept to be replayed.

    A reward model trained with LoRA on its top layers only (the demo recipe,
    :attr:`rmbias.training.TrainConfig.lora_top_layers`) keeps every layer below the first trained one
    as it was: the hidden states that enter that layer, for the same candidates after the same
    prompt (or for the same held-out chats), are the same at every checkpoint and for every seed of
    the same base. The first scoring through :func:`score` with a trunk records them for each batch
    of the cached route (whose shared prefix still runs whole: a few dozen tokens) or of the full
    route; later scorings skip the frozen layers and start from the recorded states, so only the
    trained layers run (for the demo's SmolLM2-135M, 4 of 30).

    The first trained layer is read from the model (the lowest decoder layer with a parameter that
    requires a gradient; nothing below it, the embeddings included, may require one), and the frozen
    layers' weights are summed into a signature: a model whose trunk differs is refused. Right after
    recording, :func:`score` replays once and compares, so a transformers version whose model
    forward this replay does not fit is found at once: the trunk is then switched off
    (:attr:`broken` says why) and the cached route runs whole, as without one.
    """

    def __init__(self, tolerance: float = 1e-4) -> None:
        self.first: int | None = None  # index of the first trained decoder layer
        self.signature: float | None = None
        self.states: dict[tuple[int, int, int], torch.Tensor] = {}
        self.verified, self.broken, self.tolerance = False, None, tolerance

    @staticmethod
    def first_trained(body) -> int:
        """Index of ``body``'s lowest decoder layer with a trainable parameter (0 when something
        below the layers, such as the embeddings, is trainable; the number of layers when none is)."""
        layers = getattr(body, "layers", None)
        if layers is None:
            return 0
        below = [p for name, p in body.named_parameters() if not name.startswith("layers.")]
        if any(p.requires_grad for p in below):
            return 0
        for i, layer in enumerate(layers):
            if any(p.requires_grad for p in layer.parameters()):
                return i
        return len(layers)

    @staticmethod
    def _signature(body, first: int) -> float:
        return float(sum(next(layer.parameters()).double().sum() for layer in body.layers[:first]))

    def usable(self, model) -> bool:
        """Whether this model can use the trunk: some frozen layers, the same as when it was recorded."""
        if self.broken is not None:
            return False
        body = _Reader(model).body
        first = self.first_trained(body)
        if first == 0:
            return False
        signature = self._signature(body, first)
        if self.first is None:
            self.first, self.signature = first, signature
        elif (first, signature) != (self.first, self.signature):
            raise ValueError(
                f"this trunk was recorded below layer {self.first} of another model (signature "
                f"{self.signature:.6g}); this one is frozen below layer {first} (signature {signature:.6g})"
            )
        return True

    @contextmanager
    def batch(self, body, key: tuple[int, int, int]):
        """Run one batch of the cached route: record the states entering the first trained layer,
        or, where they were recorded, replace the frozen layers by pass-throughs and start there."""
        layers, first = body.layers, self.first
        recorded = self.states.get(key)

        def record(module, args, kwargs):
            self.states[key] = args[0].detach().clone()

        def replay(module, args, kwargs):
            if args[0].shape != recorded.shape:
                raise RuntimeError(
                    f"the recorded states have shape {tuple(recorded.shape)}, not {tuple(args[0].shape)}"
                )
            return (recorded, *args[1:]), kwargs

        if recorded is None:
            hook = layers[first].register_forward_pre_hook(record, with_kwargs=True)
            try:
                yield
            finally:
                hook.remove()
            return
        frozen = [layers[i] for i in range(first)]
        hook = layers[first].register_forward_pre_hook(replay, with_kwargs=True)
        try:
            for i in range(first):
                layers[i] = _PassThrough()
            yield
        finally:
            for i, layer in enumerate(frozen):
                layers[i] = layer
            hook.remove()


class _PassThrough(torch.nn.Module):
    """A frozen decoder layer skipped in a trunk replay: returns its input (which the first trained
    layer then replaces by the recorded states)."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class _ModelRoute:
    """The model's own forward, batches of equal-length chats only (no padding at all): ``.score``
    where the model returns one (the heads of :mod:`rmbias.heads`), else output column 0 of ``.logits``."""

    def __init__(self, model, sequences):
        self.model, self.device = model, input_device(model)
        order = sorted(range(len(sequences)), key=lambda i: (len(sequences[i]), i))
        self.order, self.rows = order, [sequences[i] for i in order]

    def prepare(self, batch_size: int) -> None:
        pass

    def run(self, start: int, stop: int) -> torch.Tensor:
        out = []
        rows = self.rows[start:stop]
        i = 0
        while i < len(rows):  # split the slice into runs of equal length
            j = i
            while j < len(rows) and len(rows[j]) == len(rows[i]):
                j += 1
            ids = torch.tensor(rows[i:j], device=self.device)
            output = self.model(input_ids=ids, attention_mask=torch.ones_like(ids))
            value = output.score if getattr(output, "score", None) is not None else output.logits
            out.append(value.float().reshape(len(rows[i:j]), -1)[:, 0])
            i = j
        return torch.cat(out)

    def unsort(self, scores: torch.Tensor) -> torch.Tensor:
        result = torch.empty_like(scores)
        result[torch.tensor(self.order)] = scores
        return result


def run_in_batches(run: Callable[[int, int, int], None], n: int, batch_size: int) -> int:
    """Call ``run(start, stop, batch_size)`` over ``range(n)`` in consecutive batches.

    The batches are of equal size, the fewest that ``batch_size`` allows: 263 candidates at a
    batch size of 128 run as three batches of 88, not 128 + 128 + 7 (the engine fills a short
    batch up to the full shape, so a final batch of 7 would cost as much as one of 128).
    On an out-of-memory error the batch size is halved and the same batch retried, down to 1, where
    a :class:`ScoringError` says what to do. Returns the batch size that fitted. ``run`` sees the
    current batch size, so it can re-size anything it keeps per batch size (an expanded cache).
    """
    start = 0
    batch_size = max(1, min(batch_size, n))
    batch_size = math.ceil(n / math.ceil(n / batch_size)) if n else batch_size
    while start < n:
        stop = min(start + batch_size, n)
        try:
            run(start, stop, batch_size)
        except (RuntimeError, MemoryError) as err:
            if not is_oom(err):
                raise
            if batch_size == 1:
                raise ScoringError(
                    "out of memory at batch size 1: the model does not fit this device. Load it in 8-bit "
                    "or 4-bit, use a GPU with more memory, or a smaller model (see the hardware page)"
                ) from err
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            batch_size //= 2
            continue
        start = stop
    return batch_size


@dataclass
class Scores:
    """Scores in candidate order, the batch size that fitted, and the speed."""

    values: torch.Tensor
    route: str
    batch_size: int
    seconds: float

    @property
    def per_second(self) -> float:
        return len(self.values) / self.seconds if self.seconds else float("nan")


@torch.no_grad()
def score(
    model,
    sequences: Sequence[Sequence[int]],
    route: str = "cached",
    batch_size: int = 64,
    progress: bool | str = False,
    on_batch: Callable[[int], None] | None = None,
    trunk: FrozenTrunk | None = None,
) -> Scores:
    """Score chats (token id lists) with a reward model by one of :data:`ROUTES`.

    On a GPU out-of-memory error the batch size is halved and the batch retried, down to 1; the
    size that worked is returned in :class:`Scores`. ``progress`` shows a tqdm bar in candidates
    per second (a string becomes its label). ``on_batch`` is called with the number of candidates
    done after each batch (tests use it to interrupt a run). ``trunk`` (the cached and full routes):
    the frozen layers' states of these same ``sequences``, recorded by the first call that gets it
    and replayed by the later ones (:class:`FrozenTrunk`); a model with no frozen layers ignores it.
    """
    if trunk is not None and route in ("cached", "full") and trunk.usable(model):
        first_time = not trunk.states
        result = _score(model, sequences, route, batch_size, progress, on_batch, trunk)
        if first_time and not trunk.verified:
            replayed = _score(model, sequences, route, result.batch_size, False, None, trunk).values
            gap = float((replayed - result.values).abs().max())
            scale = float(result.values.abs().max()) or 1.0
            if gap <= trunk.tolerance * max(1.0, scale):
                trunk.verified = True
            else:
                trunk.broken = f"a replay differed from the whole cached route by {gap:.3g}"
                trunk.states.clear()
        return result
    return _score(model, sequences, route, batch_size, progress, on_batch, None)


def _score(model, sequences, route, batch_size, progress, on_batch, trunk) -> Scores:
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; choose one of {ROUTES}")
    if not sequences:
        raise ValueError("no candidates to score: the word list is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    sequences = [list(s) for s in sequences]
    if route == "model":
        engine = _ModelRoute(model, sequences)
    else:
        engine = (_CachedRoute if route == "cached" else _FullRoute)(model, sequences, trunk)
    bar = None
    if progress:
        from .progress import bar as progress_bar  # in the notebook, or in a book build's log

        bar = progress_bar(len(sequences), f"scoring {progress if isinstance(progress, str) else route}", unit="cand")
    started = time.perf_counter()
    out: list[torch.Tensor] = []
    prepared = {"batch": None}  # the batch size the engine is set up for

    def run(start: int, stop: int, batch: int) -> None:
        if prepared["batch"] != batch:
            engine.prepare(batch)
            prepared["batch"] = batch
        out.append(engine.run(start, stop).cpu())
        if bar is not None:
            bar.update(stop - start)
        if on_batch is not None:
            on_batch(stop)

    batch_size = run_in_batches(run, len(sequences), batch_size)
    if bar is not None:
        bar.close()
    values = torch.cat(out)
    if isinstance(engine, _ModelRoute):
        values = engine.unsort(values)
    return Scores(values, route, batch_size, time.perf_counter() - started)


def score_full(model, sequences: Sequence[Sequence[int]], batch_size: int = 16) -> torch.Tensor:
    """Reference route: each whole chat through the model, right-padded, scored at its last real token."""
    return score(model, sequences, route="full", batch_size=batch_size).values


def score_cached(model, sequences: Sequence[Sequence[int]], batch_size: int = 64) -> torch.Tensor:
    """Fast route: the shared prefix once, then only each candidate's suffix against its cache."""
    return score(model, sequences, route="cached", batch_size=batch_size).values


def agreement_report(
    model,
    sequences: Sequence[Sequence[int]],
    batch_size: int = 64,
    other_batch_size: int = 7,
    low_precision: str | None = "bfloat16",
) -> dict[str, float | str]:
    """How far the engine's scores are from the reference, next to the noise that no route avoids.

    In the model's own dtype (``dtype``): the largest absolute difference between the cached route
    and the full pass (``cached vs full``), and between the cached route at two batch sizes
    (``batch-size noise``); ``score_sd`` gives the scale. For a float32 model that is not quantised,
    also a ``low_precision`` copy (bfloat16, what a GPU run uses): its largest difference from float32,
    its own batch-size noise, and the Spearman correlation of the two rankings. The model itself is
    left as it was.
    """
    import pandas as pd

    full = score(model, sequences, "full", batch_size).values
    fast = score(model, sequences, "cached", batch_size).values
    fast_other = score(model, sequences, "cached", other_batch_size).values
    dtype = str(model.dtype).removeprefix("torch.")
    report: dict[str, float | str] = {
        "dtype": dtype,
        "score_sd": float(full.std()),
        "cached vs full": float((fast - full).abs().max()),
        "batch-size noise": float((fast - fast_other).abs().max()),
    }
    quantised = getattr(model, "hf_quantizer", None) is not None
    if low_precision and dtype == "float32" and not quantised:
        half = copy.deepcopy(model).to(getattr(torch, low_precision))
        low = score(half, sequences, "cached", batch_size).values
        low_other = score(half, sequences, "cached", other_batch_size).values
        del half
        short = {"bfloat16": "bf16", "float16": "fp16"}.get(low_precision, low_precision)
        report.update(
            {
                f"{short} vs fp32": float((low - fast).abs().max()),
                f"{short} batch-size noise": float((low - low_other).abs().max()),
                f"{short} vs fp32 Spearman": float(
                    pd.Series(low.numpy()).corr(pd.Series(fast.numpy()), method="spearman")
                ),
            }
        )
    return report
