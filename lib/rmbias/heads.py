"""Reward models whose heads are not transformers' own: ArmoRM, QRM and URM, written here.

Three of the paper's reward models ship their heads as code on the Hugging Face hub, to be run with
``trust_remote_code``. That code imports names that transformers 5 removed, and any remote code can
change under a pinned model. The book runs none of it: these classes implement the same heads from how
they work, and load the published safetensors under the checkpoints' own weight names and config
fields. :func:`rmbias.models.load_reward_model` refuses a load that leaves any checkpoint weight
unused or any model weight uninitialised, so a layout that differs from the one written here stops
the run instead of scoring with random weights.

Every head reads two hidden states of the final layer (after the last norm):

- ``last``, at the last real token of the chat (found from the attention mask), as every reward
  model here does;
- ``gate``, at the start of the *last* occurrence of the text that closes the user's turn and opens
  the assistant's (:attr:`RewardHeadModel.gating_text`: ``<|eot_id|><|start_header_id|>assistant
  <|end_header_id|>\\n\\n`` for Llama 3, ``<end_of_turn>\\n<start_of_turn>model\\n`` for Gemma 2), so
  the token that ends the prompt. Under causal attention it depends on the prompt alone: for
  candidates that share a prompt it is computed once (the scoring engine takes it from the shared
  prefix, :mod:`rmbias.scoring`).

The heads:

:class:`ArmoRMForReward` (``RLHFlow/ArmoRM-Llama3-8B-v0.1``)
    ``rewards = regression_layer(last)``: one reward per objective (19). A gating network maps
    ``gate`` through ``gating_n_hidden`` ReLU layers to a softmax over the objectives (divided by
    ``gating_temperature`` first) times a learned ``logit_scale``. The score is the gated sum of the
    rewards after the ``reward_transform_matrix`` (which removes verbosity from the other objectives):
    ``sum(gating * (rewards @ T))``. Computed in the model's dtype, as the published code does.
:class:`QRMLlamaForReward` (``nicolinho/QRM-Llama3.1-8B``) and :class:`QRMGemma2ForReward` (``nicolinho/QRM-Gemma-2-27B``)
    Quantile regression: ``regression_layer`` gives ``num_quantiles`` quantiles of each objective's
    reward; their mean is the objective's expected reward. The gating network's hidden layers are
    bias-free linear layers each followed by ReLU and batch normalisation (running statistics), with
    a parameter-free dropout between them in the Gemma checkpoint (which shifts its layer indices).
    Score: ``sum(gating * (expected @ T))`` for Llama, ``sum(gating * expected)`` for Gemma (whose
    checkpoint has no transform matrix). Heads in float32, as the published Llama code runs them.
:class:`URMGatedForReward` (``LxzGordon/URM-LLaMa-3.1-8B``, the gated reward: a labelled extension)
    ``score`` gives a mean and a spread for each of five HelpSteer2 attributes; a three-layer SELU
    network (``weights.fc``) maps ``last`` to five attribute weights; the reward is the weighted
    sum of the five means. The paper's route for URM is not this one: the authors loaded URM without
    its code, as a plain 10-output classification head, and read output column 0 (the helpfulness
    mean); :mod:`rmbias.models` registers that as URM's paper route.

Config fields are read as the published code reads them, with its defaults; which values came from
the config and which from a default is in :meth:`RewardHeadModel.head_settings`, recorded with every
score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import Gemma2Model, Gemma2PreTrainedModel, LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput

LLAMA3_GATING_TEXT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
GEMMA2_GATING_TEXT = "<end_of_turn>\n<start_of_turn>model\n"
# The same texts as token ids of the published tokenizers (Llama 3: 128,256 tokens; Gemma 2: 256,000),
# used until a loader sets the ids of the tokenizer actually in use (set_gating_pattern).
LLAMA3_GATING_IDS = (128009, 128006, 78191, 128007, 271)
GEMMA2_GATING_IDS = (107, 108, 106, 2516, 108)


@dataclass
class RewardOutput(ModelOutput):
    """What a head model returns: ``score`` (one float32 reward per row) and its parts."""

    score: torch.Tensor | None = None
    rewards: torch.Tensor | None = None  # per objective (ArmoRM: raw; QRM: expected; URM: attribute means)
    gating: torch.Tensor | None = None  # weight of each objective (URM: of each attribute)


def last_occurrence(ids: Sequence[int], pattern: Sequence[int]) -> int:
    """Where the last occurrence of ``pattern`` starts in ``ids``; a ``ValueError`` if it never does."""
    pattern, ids = list(pattern), list(ids)
    for j in range(len(ids) - len(pattern), -1, -1):
        if ids[j : j + len(pattern)] == pattern:
            return j
    raise ValueError(
        f"the gating pattern {pattern} does not occur in the chat: a gated reward model needs a "
        "user turn followed by the assistant's turn, rendered with its own chat template"
    )


def run_float32(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Apply ``layers`` (linear, batch-norm in eval mode, ReLU, SELU, dropout in eval mode) in
    float32 whatever the weights are stored in, as the published QRM code does under float32 autocast."""
    x = x.float()
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = F.linear(x, layer.weight.float(), None if layer.bias is None else layer.bias.float())
        elif isinstance(layer, nn.BatchNorm1d):
            x = F.batch_norm(
                x,
                layer.running_mean.float(),
                layer.running_var.float(),
                layer.weight.float(),
                layer.bias.float(),
                training=False,
                eps=layer.eps,
            )
        elif isinstance(layer, (nn.ReLU, nn.SELU, nn.Dropout)):
            x = layer.eval()(x)
        else:
            raise TypeError(f"run_float32 does not handle {type(layer).__name__}")
    return x


class GatingNetwork(nn.Module):
    """Softmax weights over ``n_out`` objectives from one hidden state, times a learned scale.

    ``n_hidden`` hidden layers of width ``width``. ArmoRM's: a ``Linear`` with bias, then ReLU
    applied as a function (so ``layers`` holds only the linear layers). QRM's (``batch_norm``): the
    modules ``Linear`` without bias, ``ReLU``, ``BatchNorm1d`` and (``dropout``) a dropout between
    hidden blocks, which has no weights but takes an index in ``layers`` (the checkpoint's weight
    names count it). Then a ``Linear`` to ``n_out`` and ``softmax(x / temperature) * logit_scale``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        width: int,
        n_hidden: int,
        temperature: float,
        batch_norm: bool = False,
        dropout: bool = False,
    ):
        super().__init__()
        self.temperature, self.batch_norm = float(temperature), batch_norm
        self.logit_scale = nn.Parameter(torch.ones(1))
        layers: list[nn.Module] = []
        for i in range(n_hidden):
            layers.append(nn.Linear(n_in if i == 0 else width, width, bias=not batch_norm))
            if batch_norm:
                layers += [nn.ReLU(), nn.BatchNorm1d(width)]
            if dropout and i < n_hidden - 1:
                layers.append(nn.Dropout(0.0))  # eval mode: identity; kept for the weight indices
        layers.append(nn.Linear(width if n_hidden else n_in, n_out, bias=True))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_norm:  # QRM: float32
            x = run_float32(self.layers, x)
            return F.softmax(x / self.temperature, dim=-1) * self.logit_scale.float()[0]
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return F.softmax(x / self.temperature, dim=-1) * self.logit_scale[0]


class RewardHeadModel:
    """What the scoring engine needs from a reward model with a head of its own (a mixin for the
    transformers models below, whose body is ``self.model``).

    :meth:`gate_position` finds the gate's token in a row of ids; :meth:`reward` maps the hidden
    states at the last token and at the gate to one float32 reward per row; ``forward`` does both
    on whole chats (right-padded, with an attention mask), the reference the engine is tested against.
    """

    gating_text: str
    gating_ids: tuple[int, ...]
    defaults: dict[str, Any] = {}  # config fields the published code reads, with its defaults
    optional_weights: tuple[str, ...] = ()  # weights a checkpoint may lack; they keep their defined start

    def _settings(self, config) -> dict[str, Any]:
        given = config.to_dict()
        self._from_config = sorted(k for k in self.defaults if k in given)
        return {k: given.get(k, v) for k, v in self.defaults.items()}

    def head_settings(self) -> dict[str, Any]:
        """The head's settings and where each came from (the config, or the published code's default)."""
        return {
            "class": type(self).__name__,
            "gating_text": self.gating_text,
            "gating_ids": list(self.gating_ids),
            **{k: getattr(self.config, k, v) for k, v in self.defaults.items()},
            "from_config": self._from_config,
            "from_default": sorted(set(self.defaults) - set(self._from_config)),
        }

    def set_gating_pattern(self, tokenizer) -> None:
        """Use the gating text as ``tokenizer`` writes it (the published ids for the published tokenizers)."""
        self.gating_ids = tuple(tokenizer.encode(self.gating_text, add_special_tokens=False))

    def gate_position(self, ids: Sequence[int]) -> int:
        return last_occurrence(ids, self.gating_ids)

    def reward(self, last: torch.Tensor, gate: torch.Tensor) -> RewardOutput:
        raise NotImplementedError

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> RewardOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        last = (attention_mask.sum(dim=1) - 1).to(hidden.device)
        gate = torch.tensor(
            [
                self.gate_position(row[: int(n)])
                for row, n in zip(input_ids.tolist(), attention_mask.sum(dim=1).tolist())
            ],
            device=hidden.device,
        )
        return self.reward(hidden[rows, last], hidden[rows, gate])


def _check_dims(config, need: Sequence[str]) -> None:
    missing = [name for name in need if getattr(config, name, None) is None]
    if missing:
        raise ValueError(
            f"{config.model_type} config lacks {missing}, which this reward head needs and the "
            "published code reads without a default"
        )


class ArmoRMForReward(RewardHeadModel, LlamaPreTrainedModel):
    """ArmoRM: 19 objective rewards, gated by the prompt (see the module docstring)."""

    gating_text, gating_ids = LLAMA3_GATING_TEXT, LLAMA3_GATING_IDS
    defaults = {"gating_temperature": 10, "gating_hidden_dim": 1024, "gating_n_hidden": 3}

    def __init__(self, config):
        super().__init__(config)
        _check_dims(config, ["num_objectives"])
        settings = self._settings(config)
        n = config.num_objectives
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, n, bias=False)
        self.reward_transform_matrix = nn.Parameter(torch.eye(n), requires_grad=False)
        self.gating = GatingNetwork(
            config.hidden_size,
            n,
            settings["gating_hidden_dim"],
            settings["gating_n_hidden"],
            settings["gating_temperature"],
        )
        self.post_init()

    def reward(self, last: torch.Tensor, gate: torch.Tensor) -> RewardOutput:
        rewards = self.regression_layer(last)
        gating = self.gating(gate)
        score = torch.sum(gating * (rewards @ self.reward_transform_matrix), dim=1)
        return RewardOutput(score=score.float(), rewards=rewards, gating=gating)

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is self:
            with torch.no_grad():
                self.reward_transform_matrix.copy_(torch.eye(self.reward_transform_matrix.shape[0]))
        if isinstance(module, GatingNetwork):
            with torch.no_grad():
                module.logit_scale.fill_(1.0)


class _QRM(RewardHeadModel):
    """The quantile-regression head shared by both QRM checkpoints (:class:`QRMLlamaForReward`,
    :class:`QRMGemma2ForReward`)."""

    defaults = {"gating_temperature": 10, "gating_hidden_dim": 1024, "gating_n_hidden": 3}
    transform = True  # whether the checkpoint has a reward_transform_matrix
    dropout = False  # whether its gating network counts dropout layers between blocks

    def _build_heads(self, config) -> None:
        _check_dims(config, ["num_objectives", "num_quantiles"])
        settings = self._settings(config)
        self.num_objectives, self.num_quantiles = config.num_objectives, config.num_quantiles
        self.regression_layer = nn.Linear(config.hidden_size, self.num_objectives * self.num_quantiles, bias=False)
        if self.transform:
            self.reward_transform_matrix = nn.Parameter(torch.eye(self.num_objectives), requires_grad=False)
        self.gating = GatingNetwork(
            config.hidden_size,
            self.num_objectives,
            settings["gating_hidden_dim"],
            settings["gating_n_hidden"],
            settings["gating_temperature"],
            batch_norm=True,
            dropout=self.dropout,
        )

    def reward(self, last: torch.Tensor, gate: torch.Tensor) -> RewardOutput:
        quantiles = run_float32([self.regression_layer], last).reshape(-1, self.num_objectives, self.num_quantiles)
        expected = quantiles.mean(dim=2)
        if self.transform:
            expected = expected @ self.reward_transform_matrix.float()
        gating = self.gating(gate)
        return RewardOutput(score=torch.sum(gating * expected, dim=1), rewards=expected, gating=gating)

    def _init_weights(self, module):
        super()._init_weights(module)
        with torch.no_grad():
            if module is self and self.transform:
                self.reward_transform_matrix.copy_(torch.eye(self.num_objectives))
            if isinstance(module, GatingNetwork):
                module.logit_scale.fill_(1.0)
            if isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()


class QRMLlamaForReward(_QRM, LlamaPreTrainedModel):
    """QRM on Llama 3.1 (19 objectives x 19 quantiles, with ArmoRM's transform matrix)."""

    gating_text, gating_ids = LLAMA3_GATING_TEXT, LLAMA3_GATING_IDS
    # The checkpoint's transform matrix is not on public record; absent, it is the identity, as
    # the published code starts it.
    optional_weights = ("reward_transform_matrix",)

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self._build_heads(config)
        self.post_init()


class QRMGemma2ForReward(_QRM, Gemma2PreTrainedModel):
    """QRM on Gemma 2 (5 HelpSteer2 objectives x 19 quantiles; no transform matrix)."""

    gating_text, gating_ids = GEMMA2_GATING_TEXT, GEMMA2_GATING_IDS
    transform, dropout = False, True

    def __init__(self, config):
        super().__init__(config)
        self.model = Gemma2Model(config)
        self._build_heads(config)
        self.post_init()


class URMGatedForReward(RewardHeadModel, LlamaPreTrainedModel):
    """URM's gated reward: attribute means from ``score``, weighted by the ``weights`` network."""

    gating_text, gating_ids = LLAMA3_GATING_TEXT, LLAMA3_GATING_IDS
    n_attributes = 5

    def __init__(self, config):
        super().__init__(config)
        self._settings(config)
        if config.num_labels != 2 * self.n_attributes:
            raise ValueError(
                f"URM's score head has {2 * self.n_attributes} outputs (a mean and a spread for each "
                f"of {self.n_attributes} attributes); this config has num_labels={config.num_labels}"
            )
        self.model = LlamaModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        hidden = config.hidden_size
        self.weights = nn.Module()
        self.weights.fc = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.SELU(),
            nn.Linear(hidden, hidden),
            nn.SELU(),
            nn.Linear(hidden, self.n_attributes),
        )
        self.post_init()

    def gate_position(self, ids: Sequence[int]) -> int:
        return len(ids) - 1  # URM weighs its attributes by the reply's last token, not by the prompt

    def reward(self, last: torch.Tensor, gate: torch.Tensor) -> RewardOutput:
        means = self.score(last).float().view(-1, self.n_attributes, 2)[:, :, 0]
        weights = self.weights.fc(last.to(self.weights.fc[0].weight.dtype)).float()
        return RewardOutput(score=torch.sum(means * weights, dim=1), rewards=means, gating=weights)


# The `reward` layouts of rmbias.models that these classes implement.
CLASSES: dict[str, type] = {
    "armorm": ArmoRMForReward,
    "qrm-llama": QRMLlamaForReward,
    "qrm-gemma2": QRMGemma2ForReward,
    "urm-gated": URMGatedForReward,
}
