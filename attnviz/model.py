"""The attention RNN: bidirectional GRU encoder, GRU decoder with a pluggable scorer.

The decoder follows Bahdanau et al. (2015): at step t the previous state s_{t-1} queries the
source, the context c_t and the previous target embedding e(y_{t-1}) feed the GRU, and the
output layer reads [s_t; c_t; e(y_{t-1})]. The attention row of step t is therefore exactly
the one that produced output token y_t.

Two paths compute the same function: :meth:`AttentionRNN.decode_step` (one step, used by every
search) and :meth:`AttentionRNN.forward` (teacher forcing over a whole batch, used by training),
which does once per batch everything that does not depend on the previous step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import SCORERS, Keys, build_scorer
from .tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID

__all__ = ["AttentionRNN", "Encoded", "ModelConfig", "StepOutput", "gru_update"]


@dataclass
class ModelConfig:
    """Architecture sizes and special token ids. Serialised into ``config.json``."""

    vocab_size: int
    emb_dim: int = 256
    enc_hidden: int = 256  # per direction
    enc_layers: int = 1
    dec_hidden: int = 256  # also the size of the encoder memory the scorer sees
    scorer: str = "additive"
    heads: int = 1  # multihead only
    attn_dim: int = 256  # additive only
    dropout: float = 0.2
    tie_output: bool = True  # output layer shares the (joint) embedding matrix
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    max_src_len: int = 128  # source pieces, including the end-of-sentence token
    max_tgt_len: int = 160  # decoding stops here

    def __post_init__(self) -> None:
        if self.scorer not in SCORERS:
            raise ValueError(
                f"unknown attention scorer {self.scorer!r}; choose one of {', '.join(SCORERS)}"
            )
        sizes = ("vocab_size", "emb_dim", "enc_hidden", "enc_layers", "dec_hidden", "heads")
        for name in (*sizes, "attn_dim", "max_src_len", "max_tgt_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.scorer == "multihead" and self.dec_hidden % self.heads:
            raise ValueError(f"heads={self.heads} must divide dec_hidden={self.dec_hidden}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        special = self.special_ids
        if len(set(special)) != 4 or not all(0 <= i < self.vocab_size for i in special):
            raise ValueError(f"special token ids must be distinct and < vocab_size: {special}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)

    @property
    def special_ids(self) -> tuple[int, int, int, int]:
        """This model's (pad, unk, bos, eos) ids."""
        return (self.pad_id, self.unk_id, self.bos_id, self.eos_id)

    @property
    def heads_used(self) -> int:
        """Number of attention heads the scorer really has (1 unless multihead)."""
        return self.heads if self.scorer == "multihead" else 1


class Encoded(NamedTuple):
    """A batch of encoded source sentences.

    keys:   attention inputs (see :class:`attnviz.attention.Keys`)
    hidden: (batch, dec_hidden) initial decoder state
    """

    keys: Keys
    hidden: Tensor

    def select(self, index: Tensor) -> Encoded:
        """Rows ``index`` of the batch. index: (new_batch,) long."""
        return Encoded(self.keys.select(index), self.hidden[index])

    def first(self, n: int) -> Encoded:
        """The first ``n`` rows of the batch, as views (no copy)."""
        return Encoded(self.keys.first(n), self.hidden[:n])


class StepOutput(NamedTuple):
    """One decoding step for a batch.

    logprobs:  (batch, vocab) log-probabilities of the next token
    hidden:    (batch, dec_hidden) the new decoder state s_t
    context:   (batch, dec_hidden) the context vector c_t
    attention: (batch, heads, src_len) the weights that produced c_t
    energies:  (batch, heads, src_len) the scorer's raw scores, ``attention`` is their softmax;
               None when the attention was imposed
    """

    logprobs: Tensor
    hidden: Tensor
    context: Tensor
    attention: Tensor
    energies: Tensor | None


def gru_update(gates_in: Tensor, gates_hidden: Tensor, hidden: Tensor) -> Tensor:
    """A GRU cell given its two pre-activations (PyTorch's gate order r, z, n).

    gates_in:     (batch, 3 * hidden) W_i x + b_i
    gates_hidden: (batch, 3 * hidden) W_h h + b_h
    hidden:       (batch, hidden)
    """
    in_r, in_z, in_n = gates_in.chunk(3, dim=-1)
    h_r, h_z, h_n = gates_hidden.chunk(3, dim=-1)
    reset = torch.sigmoid(in_r + h_r)
    update = torch.sigmoid(in_z + h_z)
    new = torch.tanh(in_n + reset * h_n)
    return new + update * (hidden - new)


class AttentionRNN(nn.Module):
    """The attention RNN translator that one :class:`ModelConfig` describes.

    A bidirectional GRU encoder reads the source embeddings; its states, projected to
    ``dec_hidden``, are the memory the scorer attends over, and its last forward and backward
    states give the first decoder state. A GRU decoder in Bahdanau order (see the module
    docstring) then gives log-probabilities over the joint vocabulary, one step at a time.

    Submodules and parameters (their names are those of the state dict in model.safetensors;
    ``a -> b`` is a linear layer from size a to size b):

    embed:         (vocab_size, emb_dim) joint source/target embedding; row pad_id is zero
    encoder:       bidirectional GRU, enc_hidden per direction, enc_layers deep
    memory_proj:   2 * enc_hidden -> dec_hidden, encoder states to the attention memory
    bridge:        2 * enc_hidden -> dec_hidden, last encoder states to s_0 (through tanh)
    scorer:        the attention scorer ``config.scorer`` (see :mod:`attnviz.attention`)
    gru_input:     emb_dim + dec_hidden -> 3 * dec_hidden, [e(y_{t-1}); c_t] to the GRU gates
    gru_hidden:    dec_hidden -> 3 * dec_hidden, s_{t-1} to the GRU gates
    pre_output:    2 * dec_hidden + emb_dim -> emb_dim, [s_t; c_t; e(y_{t-1})] before the logits
    output_bias:   (vocab_size,)
    output_weight: (vocab_size, emb_dim), or None when ``tie_output`` reuses ``embed``

    Searches call :meth:`encode` once, then :meth:`decode_step` per step; training calls
    :meth:`forward` (teacher forcing). :meth:`freeze` prepares inference. Nothing is stored
    between calls, so one frozen model serves many threads at once.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.emb_dim, padding_idx=c.pad_id)
        self.encoder = nn.GRU(
            c.emb_dim,
            c.enc_hidden,
            num_layers=c.enc_layers,
            batch_first=True,
            bidirectional=True,
            dropout=c.dropout if c.enc_layers > 1 else 0.0,
        )
        self.memory_proj = nn.Linear(2 * c.enc_hidden, c.dec_hidden)
        self.bridge = nn.Linear(2 * c.enc_hidden, c.dec_hidden)
        self.scorer = build_scorer(c.scorer, c.dec_hidden, c.heads, c.attn_dim)
        # Decoder GRU: input [e(y_{t-1}); c_t], then the output layer's input [s_t; c_t; e].
        self.gru_input = nn.Linear(c.emb_dim + c.dec_hidden, 3 * c.dec_hidden)
        self.gru_hidden = nn.Linear(c.dec_hidden, 3 * c.dec_hidden)
        self.pre_output = nn.Linear(2 * c.dec_hidden + c.emb_dim, c.emb_dim)
        self.output_bias = nn.Parameter(torch.zeros(c.vocab_size))
        # With tie_output the logits use the (joint) embedding matrix, so there is no weight.
        self.output_weight = None
        if not c.tie_output:
            self.output_weight = nn.Parameter(torch.empty(c.vocab_size, c.emb_dim))
            nn.init.normal_(self.output_weight, std=c.emb_dim**-0.5)
        nn.init.normal_(self.embed.weight, std=c.emb_dim**-0.5)
        with torch.no_grad():
            self.embed.weight[c.pad_id].zero_()
        self.dropout = nn.Dropout(c.dropout)

    def logits(self, pre: Tensor) -> Tensor:
        """pre: (..., emb_dim) -> (..., vocab)."""
        weight = self.embed.weight if self.output_weight is None else self.output_weight
        return F.linear(pre, weight, self.output_bias)

    def freeze(self) -> AttentionRNN:
        """Switch to inference: eval mode, and the output layer repacked once for oneDNN.

        The output layer is most of a decoding step; oneDNN's inner product computes the same
        float32 product about 1.5x faster than the default GEMM for a beam's few rows. The
        packed copy is read-only and shared by all callers; ``train()`` drops it.
        """
        self.eval()
        if not torch.backends.mkldnn.is_available():
            return self
        weight = self.embed.weight if self.output_weight is None else self.output_weight
        packed = (weight.detach().to_mkldnn(), self.output_bias.detach().to_mkldnn())
        # Kept out of the module tree on purpose: a cache of the weights, never saved.
        self.__dict__["_packed_output"] = packed
        return self

    def train(self, mode: bool = True) -> AttentionRNN:
        if mode:
            self.__dict__["_packed_output"] = None
        return super().train(mode)

    def _step_logits(self, pre: Tensor) -> Tensor:
        """pre: (batch, emb_dim) -> (batch, vocab), through the packed layer when frozen."""
        packed = self.__dict__.get("_packed_output")
        if packed is None or torch.is_grad_enabled():  # the packed copy carries no gradient
            return self.logits(pre)
        return torch._C._nn.mkldnn_linear(pre.to_mkldnn(), *packed).to_dense()

    def encode(self, src: Tensor, src_lengths: Tensor) -> Encoded:
        """Encode a padded batch of source token ids.

        src:         (batch, src_len) long, padded with pad_id
        src_lengths: (batch,) long, true lengths (each >= 1)
        """
        return self.encode_embedded(self.embed(src), src_lengths)

    def encode_embedded(self, embedded: Tensor, src_lengths: Tensor) -> Encoded:
        """:meth:`encode` from source embeddings (lets analysis take gradients w.r.t. them).

        embedded:    (batch, src_len, emb_dim)
        src_lengths: (batch,) long
        """
        emb = self.dropout(embedded)
        packed = pack_padded_sequence(
            emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, last = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=embedded.shape[1])
        memory = self.memory_proj(self.dropout(out))
        hidden = torch.tanh(self.bridge(torch.cat([last[-2], last[-1]], dim=-1)))
        mask = (
            torch.arange(embedded.shape[1], device=embedded.device)[None, :] < src_lengths[:, None]
        )
        return Encoded(self.scorer.prepare(memory, mask), hidden)

    def _attend_and_update(
        self, gates_embed: Tensor, hidden: Tensor, keys: Keys, context_weight: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One training step of the recurrence: attention with s_{t-1}, then the GRU update.

        gates_embed:    (batch, 3 * dec_hidden) the embedding's share of the GRU input gates
        hidden:         (batch, dec_hidden) s_{t-1}
        context_weight: (3 * dec_hidden, dec_hidden) the context's columns of gru_input
        returns s_t (batch, dec_hidden), c_t (batch, dec_hidden), weights (batch, heads, src_len)
        """
        context, weights = self.scorer(hidden, keys)
        gates_in = gates_embed + F.linear(context, context_weight)
        new_hidden = gru_update(gates_in, self.gru_hidden(hidden), hidden)
        return new_hidden, context, weights

    def decode_step(
        self, prev: Tensor, hidden: Tensor, encoded: Encoded, weights: Tensor | None = None
    ) -> StepOutput:
        """One decoding step.

        prev:    (batch,) long, the previous target token (bos_id at the first step)
        hidden:  (batch, dec_hidden) the previous decoder state
        encoded: the source, with the same batch size
        weights: (batch, heads, src_len) attention imposed instead of the scorer's (analysis
                 asks "what if this step had looked elsewhere"); None to attend normally
        """
        emb = self.embed(prev)
        energies = None
        if weights is None:
            context, weights, energies = self.scorer.attend(hidden, encoded.keys)
        else:
            context = self.scorer.combine(weights, encoded.keys)
        gates_in = self.gru_input(torch.cat([emb, context], dim=-1))
        new_hidden = gru_update(gates_in, self.gru_hidden(hidden), hidden)
        pre = torch.tanh(self.pre_output(torch.cat([new_hidden, context, emb], dim=-1)))
        logprobs = torch.log_softmax(self._step_logits(pre), dim=-1)
        return StepOutput(logprobs, new_hidden, context, weights, energies)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, return_attention: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced logits for a batch.

        src:         (batch, src_len) long
        src_lengths: (batch,) long
        tgt_in:      (batch, tgt_len) long, bos_id followed by the target minus its last token
        returns logits (batch, tgt_len, vocab) and, if asked, attention
        (batch, tgt_len, heads, src_len)
        """
        encoded = self.encode(src, src_lengths)
        emb = self.dropout(self.embed(tgt_in))
        # Everything that does not depend on the previous step is done once for the batch.
        emb_dim = self.config.emb_dim
        embed_weight = self.gru_input.weight[:, :emb_dim]
        context_weight = self.gru_input.weight[:, emb_dim:]
        gates_embed = F.linear(emb, embed_weight, self.gru_input.bias)  # (batch, tgt_len, 3D)
        hidden = encoded.hidden
        states, contexts, weights = [], [], []
        for t in range(tgt_in.shape[1]):
            hidden, context, w = self._attend_and_update(
                gates_embed[:, t], hidden, encoded.keys, context_weight
            )
            states.append(hidden)
            contexts.append(context)
            if return_attention:
                weights.append(w)
        pre = torch.tanh(
            self.pre_output(torch.cat([torch.stack(states, 1), torch.stack(contexts, 1), emb], -1))
        )
        logits = self.logits(self.dropout(pre))
        attention = torch.stack(weights, 1) if return_attention else None
        return logits, attention
