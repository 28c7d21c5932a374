"""The attention RNN: one readable model for the RNN families attnviz and the toolkits train.

Encoder: a GRU or LSTM, uni- or bidirectional, ``enc_layers`` deep, over the source
embeddings. Its states, projected to ``dec_hidden`` when ``memory_proj`` (attnviz's own
models) or raw (Joey NMT, OpenNMT-py), are the memory the scorer attends over.

Two decoder orders:

``bahdanau`` (attnviz's own models, Bahdanau et al. 2015): at step t the previous state
s_{t-1} queries the source, the context c_t and the previous target embedding e(y_{t-1}) feed
the GRU, and the output layer reads tanh(pre_output([s_t; c_t; e(y_{t-1})])). The attention
row of step t is therefore exactly the one that produced output token y_t.

``luong`` (Luong et al. 2015; Joey NMT 2.x ``RecurrentDecoder`` for both of its attention
types, OpenNMT-py ``InputFeedRNNDecoder`` and ``StdRNNDecoder``): the stacked GRU/LSTM cells
first read x_t = [e(y_{t-1}); a_{t-1}] (input feeding, a_0 = 0) or e(y_{t-1}); the top
layer's new h_t then queries the source; the attentional vector
a_t = act(W_a [h_t; c_t] + b_a) gives the logits.

Two paths compute the same function: :meth:`AttentionRNN.decode_step` (one step, used by every
search) and :meth:`AttentionRNN.forward` (teacher forcing over a whole batch, used by training).
In Bahdanau order ``forward`` does once per batch everything that does not depend on the
previous step; in Luong order it runs the step itself.

The decoder state is a tuple of tensors, each with the batch as its first dimension (see
:class:`AttentionRNN`); searches reorder it with :func:`select_state` without looking inside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import SCORERS, Keys, build_scorer
from .tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID

__all__ = [
    "AttentionRNN",
    "Encoded",
    "ModelConfig",
    "State",
    "StepOutput",
    "cat_states",
    "gru_update",
    "select_state",
]


CELLS = ("gru", "lstm")
DECODER_ORDERS = ("bahdanau", "luong")
INIT_STATES = ("tanh_bridge", "bridge", "last", "zero", "encoder_final")
ATTN_OUT_ACTIVATIONS = ("tanh", "none")

State = tuple[Tensor, ...]


@dataclass
class ModelConfig:
    """Architecture sizes, variant and special token ids. Serialised into ``config.json``.

    The defaults are attnviz's own models (Bahdanau order, one-layer GRU decoder, bidirectional
    GRU encoder projected to the decoder size, tanh bridge, one joint vocabulary).

    cell:                "gru" or "lstm", encoder and decoder
    bidirectional:       the encoder reads both ways; enc_hidden is per direction
    dec_layers:          stacked decoder cells (Luong order; Bahdanau order has one)
    decoder_order:       "bahdanau" or "luong" (see the module docstring)
    input_feeding:       Luong order: the cells also read a_{t-1} (Joey default, OpenNMT
                         InputFeedRNNDecoder); False: OpenNMT StdRNNDecoder / Joey without it
    attn_out_bias:       W_a of a_t = act(W_a [h_t; c_t] + b_a) has b_a (Joey: yes; OpenNMT:
                         only for ``mlp``)
    attn_out_activation: "tanh" (Joey, OpenNMT general/dot) or "none" (OpenNMT mlp)
    memory_proj:         project encoder states to dec_hidden before attention (attnviz);
                         False: attend over the raw states, enc_hidden * directions wide
    init_state:          the first decoder state from the encoder: "tanh_bridge" (attnviz) and
                         "bridge" (Joey) = tanh(W [final fwd; final bwd] + b) of the top
                         encoder layer, given to every decoder layer (LSTM: as h and c);
                         "last" (Joey) = that final state (forward half when bidirectional);
                         "zero"; "encoder_final" (OpenNMT) = each encoder layer's final (h, c),
                         directions concatenated, to the decoder layer of the same depth
    src_vocab_size:      None: one joint vocabulary of vocab_size and one shared embedding;
                         set: a separate source embedding, vocab_size is the target's
    tie_output:          the output layer is the target embedding matrix
    output_bias:         the output layer has a bias (Joey: no; OpenNMT: yes)
    source_eos:          "</s>" ends every source (attnviz, Joey; OpenNMT-py: no)
    null_attention:      a word without a link attends to the source "</s>" (guided alignment
                         with null links taught it, :mod:`attnviz.training.guidance`); link
                         readers then leave such a word unaligned. Decoding ignores it.
    """

    vocab_size: int
    emb_dim: int = 256
    enc_hidden: int = 256  # per direction
    enc_layers: int = 1
    dec_hidden: int = 256
    scorer: str = "additive"
    heads: int = 1  # multihead only
    attn_dim: int = 256  # additive only
    dropout: float = 0.2
    tie_output: bool = True  # output layer shares the target embedding matrix
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    max_src_len: int = 128  # source pieces, including the end-of-sentence token
    max_tgt_len: int = 160  # decoding stops here
    cell: str = "gru"
    bidirectional: bool = True
    dec_layers: int = 1
    decoder_order: str = "bahdanau"
    input_feeding: bool = False
    attn_out_bias: bool = True
    attn_out_activation: str = "tanh"
    memory_proj: bool = True
    init_state: str = "tanh_bridge"
    src_vocab_size: int | None = None
    output_bias: bool = True
    source_eos: bool = True
    null_attention: bool = False

    def __post_init__(self) -> None:
        if self.scorer not in SCORERS:
            raise ValueError(
                f"unknown attention scorer {self.scorer!r}; choose one of {', '.join(SCORERS)}"
            )
        choices = (
            ("cell", CELLS),
            ("decoder_order", DECODER_ORDERS),
            ("init_state", INIT_STATES),
            ("attn_out_activation", ATTN_OUT_ACTIVATIONS),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        sizes = ("vocab_size", "emb_dim", "enc_hidden", "enc_layers", "dec_hidden", "heads")
        for name in (*sizes, "attn_dim", "max_src_len", "max_tgt_len", "dec_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.src_vocab_size is not None and (
            not isinstance(self.src_vocab_size, int)
            or isinstance(self.src_vocab_size, bool)
            or not max(self.pad_id, self.eos_id) < self.src_vocab_size
        ):
            raise ValueError(
                "src_vocab_size must be null or an integer above pad_id and eos_id (the source "
                f"uses them), got {self.src_vocab_size!r}"
            )
        if self.scorer == "multihead" and self.dec_hidden % self.heads:
            raise ValueError(f"heads={self.heads} must divide dec_hidden={self.dec_hidden}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        special = self.special_ids
        if len(set(special)) != 4 or not all(0 <= i < self.vocab_size for i in special):
            raise ValueError(f"special token ids must be distinct and < vocab_size: {special}")
        self._check_variant()

    def _check_variant(self) -> None:
        """Combinations the model cannot build, named with what would fit."""
        if self.decoder_order == "bahdanau":
            if self.cell != "gru" or self.dec_layers != 1 or self.input_feeding:
                raise ValueError(
                    "decoder_order 'bahdanau' has one GRU decoder layer and no input feeding; "
                    "use decoder_order 'luong' for LSTM, stacked or input-feeding decoders"
                )
            if self.init_state not in ("tanh_bridge", "bridge", "zero"):
                raise ValueError(
                    f"decoder_order 'bahdanau' starts from tanh_bridge, bridge or zero, "
                    f"not {self.init_state!r}"
                )
        elif self.tie_output and self.emb_dim != self.dec_hidden:
            raise ValueError(
                f"a tied output layer in Luong order needs emb_dim ({self.emb_dim}) == "
                f"dec_hidden ({self.dec_hidden})"
            )
        if self.scorer in ("dot", "scaled_dot") and self.memory_size != self.dec_hidden:
            raise ValueError(
                f"scorer {self.scorer!r} needs the memory ({self.memory_size}) as wide as "
                f"dec_hidden ({self.dec_hidden})"
            )
        final = self.enc_hidden * self.directions
        if self.init_state == "last" and self.dec_hidden not in (final, self.enc_hidden):
            raise ValueError(
                f"init_state 'last' needs dec_hidden ({self.dec_hidden}) equal to the encoder's "
                f"final state ({final}) or its forward half ({self.enc_hidden})"
            )
        if self.init_state == "encoder_final" and (
            self.dec_layers != self.enc_layers or self.dec_hidden != final
        ):
            raise ValueError(
                f"init_state 'encoder_final' needs dec_layers == enc_layers ({self.enc_layers}) "
                f"and dec_hidden == enc_hidden * directions ({final})"
            )

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

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def memory_size(self) -> int:
        """Width of the encoder memory the scorer attends over."""
        return self.dec_hidden if self.memory_proj else self.enc_hidden * self.directions


class Encoded(NamedTuple):
    """A batch of encoded source sentences.

    keys:  attention inputs (see :class:`attnviz.attention.Keys`)
    state: the initial decoder state, a tuple of (batch, ...) tensors (see
           :class:`AttentionRNN`)
    """

    keys: Keys
    state: State

    def select(self, index: Tensor) -> Encoded:
        """Rows ``index`` of the batch. index: (new_batch,) long."""
        return Encoded(self.keys.select(index), select_state(self.state, index))

    def first(self, n: int) -> Encoded:
        """The first ``n`` rows of the batch, as views (no copy)."""
        return Encoded(self.keys.first(n), tuple(t[:n] for t in self.state))


class StepOutput(NamedTuple):
    """One decoding step for a batch.

    logprobs:  (batch, vocab) log-probabilities of the next token
    state:     the new decoder state, a tuple of (batch, ...) tensors
    context:   (batch, context_dim) the context vector c_t
    attention: (batch, heads, src_len) the weights that produced c_t
    energies:  (batch, heads, src_len) the scorer's raw scores, ``attention`` is their softmax;
               None when the attention was imposed
    """

    logprobs: Tensor
    state: State
    context: Tensor
    attention: Tensor
    energies: Tensor | None


def select_state(state: State, index: Tensor) -> State:
    """Rows ``index`` of every tensor of a decoder state. index: (new_batch,) long."""
    return tuple(t[index] for t in state)


def cat_states(states: Sequence[State]) -> State:
    """Decoder states of several batches stacked into one batch (rows in order)."""
    return tuple(torch.cat(parts) for parts in zip(*states, strict=True))


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

    Submodules and parameters (their names are those of the state dict in model.safetensors;
    ``a -> b`` is a linear layer from size a to size b; M = ``config.memory_size``,
    F = enc_hidden * directions, C = the scorer's context size, M unless multihead):

    embed:         (vocab_size, emb_dim) target embedding, also the source's when there is one
                   joint vocabulary; row pad_id is zero
    src_embed:     (src_vocab_size, emb_dim) source embedding, only with ``src_vocab_size``
    encoder:       GRU or LSTM (PyTorch's parameter names), enc_hidden per direction
    memory_proj:   F -> dec_hidden, encoder states to the memory (only with ``memory_proj``)
    bridge:        F -> dec_hidden, final encoder state to the first decoder state (only for
                   init_state tanh_bridge / bridge)
    scorer:        the attention scorer ``config.scorer`` (see :mod:`attnviz.attention`)
    Bahdanau order:
    gru_input:     emb_dim + C -> 3 * dec_hidden, [e(y_{t-1}); c_t] to the GRU gates
    gru_hidden:    dec_hidden -> 3 * dec_hidden, s_{t-1} to the GRU gates
    pre_output:    2 * dec_hidden + emb_dim -> emb_dim, [s_t; c_t; e(y_{t-1})] before the logits
    Luong order:
    decoder_cells: dec_layers GRUCell / LSTMCell (weight_ih, weight_hh, bias_ih, bias_hh);
                   layer 0 reads emb_dim (+ dec_hidden with input feeding)
    attn_out:      dec_hidden + C -> dec_hidden, W_a over [h_t; c_t] (query columns first)
    Both:
    output_weight: (vocab_size, emb_dim | dec_hidden), or None when ``tie_output`` reuses
                   ``embed``
    output_bias:   (vocab_size,), or None without ``output_bias``

    The decoder state is a tuple of tensors, batch first: Bahdanau order (s,) with s
    (batch, dec_hidden); Luong order (h,) for GRU or (h, c) for LSTM, each
    (batch, dec_layers, dec_hidden), then a_{t-1} (batch, dec_hidden) with input feeding.

    Searches call :meth:`encode` once, then :meth:`decode_step` per step; training calls
    :meth:`forward` (teacher forcing). :meth:`freeze` prepares inference. Nothing is stored
    between calls, so one frozen model serves many threads at once.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        final = c.enc_hidden * c.directions
        self.embed = nn.Embedding(c.vocab_size, c.emb_dim, padding_idx=c.pad_id)
        self.src_embed = None
        if c.src_vocab_size is not None:
            self.src_embed = nn.Embedding(c.src_vocab_size, c.emb_dim, padding_idx=c.pad_id)
            nn.init.normal_(self.src_embed.weight, std=c.emb_dim**-0.5)
        rnn = nn.GRU if c.cell == "gru" else nn.LSTM
        self.encoder = rnn(
            c.emb_dim,
            c.enc_hidden,
            num_layers=c.enc_layers,
            batch_first=True,
            bidirectional=c.bidirectional,
            dropout=c.dropout if c.enc_layers > 1 else 0.0,
        )
        self.memory_proj = nn.Linear(final, c.dec_hidden) if c.memory_proj else None
        self.bridge = None
        if c.init_state in ("tanh_bridge", "bridge"):
            self.bridge = nn.Linear(final, c.dec_hidden)
        self.scorer = build_scorer(c.scorer, c.dec_hidden, c.heads, c.attn_dim, c.memory_size)
        context = self.scorer.context_dim
        if c.decoder_order == "bahdanau":
            # Decoder GRU: input [e(y_{t-1}); c_t], then the output layer's input [s_t; c_t; e].
            self.gru_input = nn.Linear(c.emb_dim + context, 3 * c.dec_hidden)
            self.gru_hidden = nn.Linear(c.dec_hidden, 3 * c.dec_hidden)
            self.pre_output = nn.Linear(c.dec_hidden + context + c.emb_dim, c.emb_dim)
            out_features = c.emb_dim
        else:
            cell = nn.GRUCell if c.cell == "gru" else nn.LSTMCell
            first = c.emb_dim + (c.dec_hidden if c.input_feeding else 0)
            self.decoder_cells = nn.ModuleList(
                cell(first if i == 0 else c.dec_hidden, c.dec_hidden) for i in range(c.dec_layers)
            )
            self.attn_out = nn.Linear(c.dec_hidden + context, c.dec_hidden, bias=c.attn_out_bias)
            out_features = c.dec_hidden
        self.output_bias = nn.Parameter(torch.zeros(c.vocab_size)) if c.output_bias else None
        # With tie_output the logits use the target embedding matrix, so there is no weight.
        self.output_weight = None
        if not c.tie_output:
            self.output_weight = nn.Parameter(torch.empty(c.vocab_size, out_features))
            nn.init.normal_(self.output_weight, std=out_features**-0.5)
        nn.init.normal_(self.embed.weight, std=c.emb_dim**-0.5)
        with torch.no_grad():
            self.embed.weight[c.pad_id].zero_()
            if self.src_embed is not None:
                self.src_embed.weight[c.pad_id].zero_()
        self.dropout = nn.Dropout(c.dropout)

    @property
    def source_embedding(self) -> nn.Embedding:
        """The embedding the encoder reads (the joint one when there is one vocabulary)."""
        return self.embed if self.src_embed is None else self.src_embed

    def output_layer(self) -> tuple[Tensor, Tensor | None]:
        """The output layer's weight (vocab, emb_dim | dec_hidden), the target embedding when
        tied, and its bias (vocab,) or None."""
        weight = self.embed.weight if self.output_weight is None else self.output_weight
        return weight, self.output_bias

    def logits(self, pre: Tensor) -> Tensor:
        """pre: (..., emb_dim | dec_hidden) -> (..., vocab)."""
        return F.linear(pre, *self.output_layer())

    def missing(self, feature: str) -> str | None:
        """Why an analysis ``feature`` ("explain", "knock_out", "saliency") is unavailable:
        never for attnviz's own models (an adapted model may lack one, see attnviz.adapter)."""
        return None

    def freeze(self) -> AttentionRNN:
        """Switch to inference: eval mode, and the output layer repacked once for oneDNN.

        The output layer is most of a decoding step; oneDNN's inner product computes the same
        float32 product about 1.5x faster than the default GEMM for a beam's few rows. The
        packed copy is read-only and shared by all callers; ``train()`` drops it.
        """
        self.eval()
        if not torch.backends.mkldnn.is_available():
            return self
        weight, bias = self.output_layer()
        if bias is None:
            bias = weight.new_zeros(len(weight))
        packed = (weight.detach().to_mkldnn(), bias.detach().to_mkldnn())
        # Kept out of the module tree on purpose: a cache of the weights, never saved.
        self.__dict__["_packed_output"] = packed
        return self

    def train(self, mode: bool = True) -> AttentionRNN:
        if mode:
            self.__dict__["_packed_output"] = None
        return super().train(mode)

    def _step_logits(self, pre: Tensor) -> Tensor:
        """pre: (batch, features) -> (batch, vocab), through the packed layer when frozen."""
        packed = self.__dict__.get("_packed_output")
        if packed is None or torch.is_grad_enabled():  # the packed copy carries no gradient
            return self.logits(pre)
        return torch._C._nn.mkldnn_linear(pre.to_mkldnn(), *packed).to_dense()

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor) -> Encoded:
        """Encode a padded batch of source token ids.

        src:         (batch, src_len) long, padded with pad_id
        src_lengths: (batch,) long, true lengths (each >= 1)
        """
        return self.encode_embedded(self.source_embedding(src), src_lengths)

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
        memory = self.memory_proj(self.dropout(out)) if self.memory_proj is not None else out
        mask = (
            torch.arange(embedded.shape[1], device=embedded.device)[None, :] < src_lengths[:, None]
        )
        return Encoded(self.scorer.prepare(memory, mask), self.initial_state(last))

    def _final_layers(self, final: Tensor) -> Tensor:
        """(enc_layers * directions, batch, enc_hidden) PyTorch final states ->
        (batch, enc_layers, enc_hidden * directions), directions side by side per layer."""
        c = self.config
        per_layer = final.view(c.enc_layers, c.directions, final.shape[1], c.enc_hidden)
        return per_layer.permute(2, 0, 1, 3).reshape(final.shape[1], c.enc_layers, -1)

    def initial_state(self, last: Tensor | tuple[Tensor, Tensor]) -> State:
        """The first decoder state from the encoder's final states (``last`` as PyTorch's GRU
        returns it, or its (h, c) for an LSTM)."""
        c = self.config
        final_h = last[0] if isinstance(last, tuple) else last
        layers = self._final_layers(final_h)  # (batch, enc_layers, F)
        top = layers[:, -1]  # (batch, F): Joey's and attnviz's "final encoder state"
        if c.init_state in ("tanh_bridge", "bridge"):
            start = torch.tanh(self.bridge(top))
        elif c.init_state == "last":
            start = top[:, : c.dec_hidden]  # Joey: the forward half of a bidirectional state
        elif c.init_state == "zero":
            start = top.new_zeros(top.shape[0], c.dec_hidden)
        if c.decoder_order == "bahdanau":
            return (start,)
        if c.init_state == "encoder_final":
            h = layers
            cells = self._final_layers(last[1]) if isinstance(last, tuple) else None
        else:
            # Joey gives every decoder layer the same state, and an LSTM the same h and c.
            h = cells = start[:, None, :].expand(-1, c.dec_layers, -1).contiguous()
        state = (h,) if c.cell == "gru" else (h, cells)
        if c.input_feeding:
            state += (h.new_zeros(h.shape[0], c.dec_hidden),)
        return state

    # -- decoder ---------------------------------------------------------------------------

    def decode_step(
        self, prev: Tensor, state: State, encoded: Encoded, weights: Tensor | None = None
    ) -> StepOutput:
        """One decoding step.

        prev:    (batch,) long, the previous target token (bos_id at the first step)
        state:   the previous decoder state (see the class docstring)
        encoded: the source, with the same batch size
        weights: (batch, heads, src_len) attention imposed instead of the scorer's (analysis
                 asks "what if this step had looked elsewhere"); None to attend normally
        """
        if self.config.decoder_order == "luong":
            return self._luong_step(self.embed(prev), state, encoded.keys, weights)
        (hidden,) = state
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
        return StepOutput(logprobs, (new_hidden,), context, weights, energies)

    def _luong_step(
        self, emb: Tensor, state: State, keys: Keys, weights: Tensor | None = None
    ) -> StepOutput:
        """Luong order: update the stacked cells, attend with the top h_t, then
        a_t = act(W_a [h_t; c_t] + b_a) and the logits.

        emb: (batch, emb_dim) e(y_{t-1}), dropout applied; state and weights as in
        :meth:`decode_step`
        """
        pre, *rest = self._luong_recurrence(emb, state, keys, weights)
        return StepOutput(torch.log_softmax(self._step_logits(pre), dim=-1), *rest)

    def _luong_recurrence(
        self, emb: Tensor, state: State, keys: Keys, weights: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor, Tensor, Tensor | None]:
        """:meth:`_luong_step` up to the output layer: its input (batch, dec_hidden), dropout
        applied, then the state, context, attention and energies of :class:`StepOutput`."""
        c = self.config
        h, cells = state[0], state[1] if c.cell == "lstm" else None
        x = torch.cat([emb, state[-1]], dim=-1) if c.input_feeding else emb
        new_h, new_c = [], []
        for i, cell in enumerate(self.decoder_cells):
            if cells is None:
                hi = cell(x, h[:, i])
            else:
                hi, ci = cell(x, (h[:, i], cells[:, i]))
                new_c.append(ci)
            new_h.append(hi)
            # Dropout between the layers, as PyTorch's stacked RNN (Joey) and OpenNMT's cells.
            x = self.dropout(hi) if i + 1 < len(self.decoder_cells) else hi
        query = new_h[-1]
        energies = None
        if weights is None:
            context, weights, energies = self.scorer.attend(query, keys)
        else:
            context = self.scorer.combine(weights, keys)
        attentional = self.attn_out(self.dropout(torch.cat([query, context], dim=-1)))
        if c.attn_out_activation == "tanh":
            attentional = torch.tanh(attentional)
        new_state: State = (torch.stack(new_h, 1),)
        if cells is not None:
            new_state += (torch.stack(new_c, 1),)
        if c.input_feeding:
            new_state += (attentional,)
        return self.dropout(attentional), new_state, context, weights, energies

    def _attend_and_update(
        self, gates_embed: Tensor, hidden: Tensor, keys: Keys, context_weight: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One training step of the Bahdanau recurrence: attention with s_{t-1}, then the GRU.

        gates_embed:    (batch, 3 * dec_hidden) the embedding's share of the GRU input gates
        hidden:         (batch, dec_hidden) s_{t-1}
        context_weight: (3 * dec_hidden, C) the context's columns of gru_input
        returns s_t (batch, dec_hidden), c_t (batch, C), weights (batch, heads, src_len)
        """
        context, weights = self.scorer(hidden, keys)
        gates_in = gates_embed + F.linear(context, context_weight)
        new_hidden = gru_update(gates_in, self.gru_hidden(hidden), hidden)
        return new_hidden, context, weights

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        return_attention: bool = False,
        features: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced logits for a batch.

        src:         (batch, src_len) long
        src_lengths: (batch,) long
        tgt_in:      (batch, tgt_len) long, bos_id followed by the target minus its last token
        features:    return the output layer's input instead of the logits, (batch, tgt_len,
                     emb_dim | dec_hidden) with dropout applied: the training loss applies
                     :meth:`output_layer` itself (``attnviz.training.output_loss``)
        returns logits (batch, tgt_len, vocab) (Luong order: log-probabilities) or the
        features, and, if asked, attention (batch, tgt_len, heads, src_len)
        """
        encoded = self.encode(src, src_lengths)
        emb = self.dropout(self.embed(tgt_in))
        if self.config.decoder_order == "luong":
            return self._luong_forward(emb, encoded, return_attention, features)
        # Everything that does not depend on the previous step is done once for the batch.
        emb_dim = self.config.emb_dim
        embed_weight = self.gru_input.weight[:, :emb_dim]
        context_weight = self.gru_input.weight[:, emb_dim:]
        gates_embed = F.linear(emb, embed_weight, self.gru_input.bias)  # (batch, tgt_len, 3D)
        (hidden,) = encoded.state
        states, contexts, weights = [], [], []
        # unbind, not gates_embed[:, t]: the backward of each index would zero a gradient the
        # size of the whole tensor, once per step.
        for gates_t in gates_embed.unbind(1):
            hidden, context, w = self._attend_and_update(
                gates_t, hidden, encoded.keys, context_weight
            )
            states.append(hidden)
            contexts.append(context)
            if return_attention:
                weights.append(w)
        pre = torch.tanh(
            self.pre_output(torch.cat([torch.stack(states, 1), torch.stack(contexts, 1), emb], -1))
        )
        pre = self.dropout(pre)
        attention = torch.stack(weights, 1) if return_attention else None
        return (pre if features else self.logits(pre)), attention

    def _luong_forward(
        self, emb: Tensor, encoded: Encoded, return_attention: bool, features: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Luong order teacher forcing: the recurrence itself, once per target position (it
        reaches the output layer's input through input feeding), then the output layer.

        emb: (batch, tgt_len, emb_dim) target input embeddings, dropout applied
        """
        state, pres, weights = encoded.state, [], []
        for emb_t in emb.unbind(1):  # unbind: see forward
            pre, state, _, attention, _ = self._luong_recurrence(emb_t, state, encoded.keys)
            pres.append(pre)
            weights.append(attention)
        attention = torch.stack(weights, 1) if return_attention else None
        pre = torch.stack(pres, 1)
        if features:
            return pre, attention
        # log_softmax of the logits: the loss (cross entropy) and every caller see the same.
        return torch.log_softmax(self.logits(pre), dim=-1), attention
