"""The PyTorch tutorial's translator, opened in attnviz through an adapter.

``EncoderRNN``, ``BahdanauAttention`` and ``AttnDecoderRNN`` are the model of the PyTorch
tutorial "NLP From Scratch: Translation with a Sequence to Sequence Network and Attention"
(Sean Robertson, pytorch/tutorials, intermediate_source/seq2seq_translation_tutorial.py,
BSD 3-Clause License, Copyright (c) 2017-2022 PyTorch contributors): the same layers with the
same names, so a state dict saved from the tutorial loads into them, and the same step.

:class:`TutorialAdapter` is what attnviz needs on top (see :mod:`attnviz.adapter`): a batch
encoder that skips padding, one masked decoder step, and the two word vocabularies with the
tutorial's ids (SOS 0, EOS 1). :func:`build` trains the pair on a dozen sentences for a few
seconds so that the example translates something; to open your own tutorial model, load its
state dicts and vocabularies instead::

    encoder.load_state_dict(torch.load("encoder.pt"))
    decoder.load_state_dict(torch.load("decoder.pt"))
    adapter = TutorialAdapter(encoder, decoder, input_lang_words, output_lang_words)

Run it: ``attnviz app --model attnviz.examples.tutorial_seq2seq:build``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..adapter import AdapterStep, word_tokenizer

__all__ = [
    "MAX_LENGTH",
    "PAIRS",
    "AttnDecoderRNN",
    "BahdanauAttention",
    "EncoderRNN",
    "TutorialAdapter",
    "build",
    "train",
    "vocabulary",
]

SOS_token = 0
EOS_token = 1
MAX_LENGTH = 10  # the tutorial's sentence limit, in words

# The tutorial's vocabulary lists begin SOS, EOS; attnviz also names padding and unknown words.
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>"]

# French -> English, in the tutorial's normalised form (lower case, punctuation split off).
PAIRS = [
    ("je suis froid .", "i am cold ."),
    ("je suis content .", "i am happy ."),
    ("je suis fatigue .", "i am tired ."),
    ("il est froid .", "he is cold ."),
    ("il est content .", "he is happy ."),
    ("elle est fatiguee .", "she is tired ."),
    ("elle est contente .", "she is happy ."),
    ("nous sommes contents .", "we are happy ."),
    ("nous sommes fatigues .", "we are tired ."),
    ("tu es froid .", "you are cold ."),
    ("vous etes contents .", "you are happy ."),
    ("ils sont fatigues .", "they are tired ."),
]


# -- the tutorial's model ---------------------------------------------------------------------


class EncoderRNN(nn.Module):
    """A GRU over the source word embeddings (batch first)."""

    def __init__(self, input_size: int, hidden_size: int, dropout_p: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input: Tensor) -> tuple[Tensor, Tensor]:
        """input: (batch, src_len) -> outputs (batch, src_len, hidden), hidden (1, batch,
        hidden)."""
        embedded = self.dropout(self.embedding(input))
        return self.gru(embedded)


class BahdanauAttention(nn.Module):
    """Additive attention: score_j = Va . tanh(Wa q + Ua k_j)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
        """query: (batch, 1, hidden), keys: (batch, src_len, hidden) -> context (batch, 1,
        hidden), weights (batch, 1, src_len)."""
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)
        return context, weights


class AttnDecoderRNN(nn.Module):
    """A GRU that reads [e(y_{t-1}); c_t], the context made with its previous state."""

    def __init__(self, hidden_size: int, output_size: int, dropout_p: float = 0.1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward(
        self, encoder_outputs: Tensor, encoder_hidden: Tensor, target_tensor: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """MAX_LENGTH steps from SOS, fed the target (teacher forcing) or the best token.

        encoder_outputs: (batch, src_len, hidden); encoder_hidden: (1, batch, hidden);
        target_tensor: (batch, >= MAX_LENGTH) long or None
        returns log-probabilities (batch, MAX_LENGTH, vocab), the last hidden state and the
        attention (batch, MAX_LENGTH, src_len)
        """
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.full((batch_size, 1), SOS_token, dtype=torch.long)
        decoder_hidden = encoder_hidden
        decoder_outputs, attentions = [], []
        for i in range(MAX_LENGTH):
            decoder_output, decoder_hidden, attn_weights = self.forward_step(
                decoder_input, decoder_hidden, encoder_outputs
            )
            decoder_outputs.append(decoder_output)
            attentions.append(attn_weights)
            if target_tensor is not None:
                decoder_input = target_tensor[:, i].unsqueeze(1)
            else:
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()
        outputs = F.log_softmax(torch.cat(decoder_outputs, dim=1), dim=-1)
        return outputs, decoder_hidden, torch.cat(attentions, dim=1)

    def forward_step(
        self, input: Tensor, hidden: Tensor, encoder_outputs: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """input: (batch, 1) long; hidden: (1, batch, hidden) -> logits (batch, 1, vocab),
        the new hidden, attention (batch, 1, src_len)."""
        embedded = self.dropout(self.embedding(input))
        query = hidden.permute(1, 0, 2)
        context, attn_weights = self.attention(query, encoder_outputs)
        output, hidden = self.gru(torch.cat((embedded, context), dim=2), hidden)
        return self.out(output), hidden, attn_weights


# -- the adapter --------------------------------------------------------------------------


class TutorialAdapter(nn.Module):
    """The tutorial's encoder and decoder as an attnviz :class:`~attnviz.adapter.
    TranslationAdapter`. The tutorial feeds one unpadded sentence at a time; batches need the
    encoder to skip padding (packed) and the attention to give padding no weight (masked),
    which is the only thing this step adds to ``AttnDecoderRNN.forward_step``.

    The state is the decoder GRU's hidden state, batch first: (batch, hidden).
    """

    imposes_attention = True
    source_eos = True  # the tutorial appends EOS to every source sentence

    def __init__(
        self,
        encoder: EncoderRNN,
        decoder: AttnDecoderRNN,
        input_words: Sequence[str],
        output_words: Sequence[str],
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.source_tokenizer = word_tokenizer(input_words, lowercase=True)
        self.target_tokenizer = word_tokenizer(output_words)
        self.max_src_len = MAX_LENGTH + 1
        self.max_tgt_len = MAX_LENGTH
        self.examples = [source for source, _ in PAIRS]

    def embed_source(self, src: Tensor) -> Tensor:
        """src: (batch, src_len) long -> (batch, src_len, hidden)."""
        return self.encoder.embedding(src)

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src: (batch, src_len), src_lengths: (batch,) -> memory (batch, src_len, hidden),
        initial state (batch, hidden)."""
        return self.encode_embedded(self.embed_source(src), src_lengths)

    def encode_embedded(self, embedded: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`encode` from embeddings (batch, src_len, hidden)."""
        packed = pack_padded_sequence(
            self.encoder.dropout(embedded),
            src_lengths.cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        outputs, hidden = self.encoder.gru(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=embedded.shape[1])
        return outputs, hidden[0]

    def decode_step(
        self,
        prev: Tensor,
        state: Tensor,
        memory: Tensor,
        mask: Tensor,
        attention: Tensor | None = None,
    ) -> AdapterStep:
        """prev: (batch,); state: (batch, hidden); memory: (batch, src_len, hidden);
        mask: (batch, src_len); attention: (batch, src_len) imposed, or None."""
        dec, attend = self.decoder, self.decoder.attention
        embedded = dec.dropout(dec.embedding(prev))
        scores = attend.Va(torch.tanh(attend.Wa(state[:, None]) + attend.Ua(memory)))
        energies = scores.squeeze(2).masked_fill(~mask, float("-inf"))
        if attention is None:
            attention = F.softmax(energies, dim=-1)
        context = torch.bmm(attention[:, None], memory)[:, 0]
        output, hidden = dec.gru(torch.cat((embedded, context), dim=1)[:, None], state[None])
        logprobs = F.log_softmax(dec.out(output[:, 0]), dim=-1)
        return AdapterStep(logprobs, hidden[0], attention, context, energies)


# -- a few seconds of training --------------------------------------------------------------


def vocabulary(sentences: Sequence[str]) -> list[str]:
    """The special words, then every word of ``sentences`` in order of appearance."""
    words = dict.fromkeys(SPECIALS)
    for sentence in sentences:
        words.update(dict.fromkeys(sentence.split()))
    return list(words)


def train(adapter: TutorialAdapter, pairs: Sequence[tuple[str, str]], epochs: int) -> float:
    """Teacher-forced training on ``pairs`` (the whole list as one batch, Adam); returns the
    last mean loss per target word."""
    eos = EOS_token
    sources = [adapter.source_tokenizer.encode(s) + [eos] for s, _ in pairs]
    targets = [adapter.target_tokenizer.encode(t) + [eos] for _, t in pairs]
    pad = adapter.target_tokenizer.special_ids[0]
    src = nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sources], True, pad)
    tgt = nn.utils.rnn.pad_sequence([torch.tensor(t) for t in targets], True, pad)
    lengths = torch.tensor([len(s) for s in sources])
    optimizer = torch.optim.Adam(adapter.parameters(), lr=0.01)
    adapter.train()
    for _ in range(epochs):
        memory, state = adapter.encode(src, lengths)
        mask = torch.arange(src.shape[1])[None, :] < lengths[:, None]
        prev = torch.full((len(pairs),), SOS_token, dtype=torch.long)
        logprobs = []
        for t in range(tgt.shape[1]):
            step = adapter.decode_step(prev, state, memory, mask)
            logprobs.append(step.logprobs)
            state, prev = step.state, tgt[:, t]
        loss = F.nll_loss(torch.stack(logprobs, 1).flatten(0, 1), tgt.flatten(), ignore_index=pad)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    adapter.eval()
    return loss.item()


def build(hidden_size: int = 32, epochs: int = 150, seed: int = 0) -> TutorialAdapter:
    """The factory ``attnviz app --model attnviz.examples.tutorial_seq2seq:build`` calls: the
    tutorial's model trained on :data:`PAIRS` (a few seconds, the same weights every time)."""
    torch.manual_seed(seed)
    input_words = vocabulary([s for s, _ in PAIRS])
    output_words = vocabulary([t for _, t in PAIRS])
    encoder = EncoderRNN(len(input_words), hidden_size)
    decoder = AttnDecoderRNN(hidden_size, len(output_words))
    adapter = TutorialAdapter(encoder, decoder, input_words, output_words)
    train(adapter, PAIRS, epochs)
    return adapter
