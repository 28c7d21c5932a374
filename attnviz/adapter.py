"""Your own PyTorch attention RNN as an attnviz translator, without converting it.

Write a small class that follows :class:`TranslationAdapter` around the model you already
have (encode a batch, one decoder step, the two tokenizers), and :func:`adapted_translator`
turns it into a :class:`attnviz.translator.Translator`: greedy and beam search with the beam
tree, n-best lists, forced decoding, prefix continuation, batched decoding, every trace, the
CLI and every view of the app (``attnviz app --model module:factory``). A worked example
adapts the PyTorch tutorial's ``EncoderRNN`` and ``AttnDecoderRNN``:
:mod:`attnviz.examples.tutorial_seq2seq`.

What needs more than the protocol's required members:

- the scorer's raw scores (energies): return them in :class:`AdapterStep`;
- knock-out (Step through's "Does attention explain this output?"): ``imposes_attention``
  True, and ``decode_step`` then honours its ``attention`` argument;
- gradient x input saliency: ``embed_source`` and ``encode_embedded``;
- "Explain this step" takes attnviz's own scorers apart (their formula, keys and values): it
  is not available for an adapted model, and the app says so.

A feature the adapter does not offer raises :class:`attnviz.InputError` with a message that
names what is missing; the app shows that message.

Importing code is the user's choice on the command line (``--model module:factory``); the
app never imports anything a visitor names or uploads.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from .errors import CheckpointError, InputError
from .model import Encoded, StepOutput
from .search import DecodingConfig
from .tokenize import Tokenizer, ToolkitTokenizer, Vocabulary, WordSegmenter
from .translator import Translator

__all__ = [
    "AdaptedMemory",
    "AdaptedModel",
    "AdapterConfig",
    "AdapterStep",
    "TranslationAdapter",
    "adapted_translator",
    "adapter_examples",
    "is_factory_spec",
    "load_factory",
    "resolve_factory",
    "word_tokenizer",
]

# A decoder state or an encoder memory: one tensor or a tuple of tensors, batch first.
Tensors = Tensor | tuple[Tensor, ...]

FEATURES = ("explain", "knock_out", "saliency")


class AdapterStep(NamedTuple):
    """One decoder step of an adapted model, for a batch.

    logprobs:  (batch, vocab) log-probabilities of the next target token
    state:     the new decoder state (a tensor or a tuple of tensors, batch first)
    attention: (batch, src_len), or (batch, heads, src_len) with ``heads`` > 1: the weights
               that made this step's context; each row sums to 1, 0 at padding
    context:   (batch, dim) the context vector, or None when the model does not expose it
    energies:  the scorer's raw scores, shaped like ``attention`` (softmax gives it), or None
    """

    logprobs: Tensor
    state: Tensors
    attention: Tensor
    context: Tensor | None = None
    energies: Tensor | None = None


@runtime_checkable
class TranslationAdapter(Protocol):
    """What attnviz needs from your model. Required members:

    source_tokenizer, target_tokenizer: text <-> pieces <-> ids and words for each side
        (:class:`attnviz.tokenize.Tokenizer`; :func:`word_tokenizer` makes one from a word
        list). The target's ``special_ids`` (pad, unk, bos, eos) are the ids decoding uses;
        the source must use the same pad and eos ids.
    max_src_len: the most source ids the model reads (EOS included); longer input is cut.
    max_tgt_len: the most target tokens a search produces.

    Optional members, read when present:

    source_eos (bool, default True): "</s>" ends every source.
    heads (int, default 1): attention heads.
    decoding (:class:`attnviz.search.DecodingConfig`): the default beam size, length penalty
        and length rule.
    imposes_attention (bool, default False): ``decode_step`` honours ``attention``.
    embed_source(src) -> (batch, src_len, emb) and encode_embedded(embedded, src_lengths)
        (as :meth:`encode`, from embeddings): gradient x input saliency.
    examples (list of str): source sentences the app offers to pick from.

    An adapter that is a ``torch.nn.Module`` is switched to eval mode.
    """

    source_tokenizer: Tokenizer
    target_tokenizer: Tokenizer
    max_src_len: int
    max_tgt_len: int

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensors, Tensors]:
        """Encode a padded batch of source ids.

        src:         (batch, src_len) long, padded with the pad id
        src_lengths: (batch,) long, true lengths (each >= 1)
        returns (memory, state): what decode_step attends over and the initial decoder state,
        each a tensor or a tuple of tensors with the batch first (searches select and repeat
        rows of them without looking inside)
        """
        ...

    def decode_step(
        self,
        prev: Tensor,
        state: Tensors,
        memory: Tensors,
        mask: Tensor,
        attention: Tensor | None = None,
    ) -> AdapterStep:
        """One decoder step.

        prev:      (batch,) long, the previous target token (bos at the first step)
        state:     the previous decoder state, as encode or the last step returned it
        memory:    as encode returned it (rows selected like the state)
        mask:      (batch, src_len) bool, True at real source tokens
        attention: None; with ``imposes_attention``, weights shaped like
                   AdapterStep.attention to use instead of the scorer's
        """
        ...


@dataclass(frozen=True)
class AdapterConfig:
    """What the searches and the translator read of a model's config, for an adapted model.

    vocab_size is the target vocabulary; the ids are the target tokenizer's special ids.
    """

    vocab_size: int
    pad_id: int
    unk_id: int
    bos_id: int
    eos_id: int
    max_src_len: int
    max_tgt_len: int
    source_eos: bool = True
    heads_used: int = 1
    null_attention: bool = False  # never taught null links (ModelConfig.null_attention)


class AdaptedMemory(NamedTuple):
    """The encoder memory of an adapted model with its source mask; stands where attnviz's
    own models keep their :class:`attnviz.attention.Keys`.

    tensors: the adapter's memory as a tuple, each (batch, ...)
    mask:    (batch, src_len) bool, True at real source tokens
    bare:    the adapter returned one tensor, not a tuple
    bare_state: the adapter's decoder state is one tensor, not a tuple (kept here, with the
             sentence, rather than on the shared model: concurrent sessions)
    """

    tensors: tuple[Tensor, ...]
    mask: Tensor
    bare: bool
    bare_state: bool

    def select(self, index: Tensor) -> AdaptedMemory:
        """Rows ``index`` of the batch. index: (new_batch,) long."""
        return self._replace(tensors=tuple(t[index] for t in self.tensors), mask=self.mask[index])

    def first(self, n: int) -> AdaptedMemory:
        """The first ``n`` rows of the batch, as views."""
        return self._replace(tensors=tuple(t[:n] for t in self.tensors), mask=self.mask[:n])

    @property
    def memory(self) -> Tensors:
        """The memory as the adapter gave it."""
        return self.tensors[0] if self.bare else self.tensors


def _as_tuple(value: Tensors, what: str) -> tuple[Tensor, ...]:
    if isinstance(value, Tensor):
        return (value,)
    if isinstance(value, tuple) and value and all(isinstance(t, Tensor) for t in value):
        return value
    raise InputError(f"the adapter's {what} must be a tensor or a tuple of tensors (batch first)")


class AdaptedModel:
    """A :class:`TranslationAdapter` behind the interface attnviz's searches call on
    :class:`attnviz.model.AttentionRNN`: ``config``, ``encode``, ``decode_step``, ``freeze``
    (and ``source_embedding``/``encode_embedded`` for saliency when the adapter has them).

    The decoder state travels as a tuple of batch-first tensors; a bare tensor from the
    adapter goes back to it bare.
    """

    def __init__(self, adapter: TranslationAdapter, name: str) -> None:
        self.adapter = adapter
        self.name = name
        pad, unk, bos, eos = adapter.target_tokenizer.special_ids
        source_pad, source_eos = (adapter.source_tokenizer.special_ids[i] for i in (0, 3))
        if (source_pad, source_eos) != (pad, eos):
            raise CheckpointError(
                f"{name}: the source tokenizer's pad and eos ids ({source_pad}, {source_eos}) "
                f"differ from the target's ({pad}, {eos}); attnviz needs them shared"
            )
        self.config = AdapterConfig(
            vocab_size=adapter.target_tokenizer.vocab_size,
            pad_id=pad,
            unk_id=unk,
            bos_id=bos,
            eos_id=eos,
            max_src_len=int(adapter.max_src_len),
            max_tgt_len=int(adapter.max_tgt_len),
            source_eos=bool(getattr(adapter, "source_eos", True)),
            heads_used=int(getattr(adapter, "heads", 1)),
        )

    def freeze(self) -> AdaptedModel:
        """Inference mode: an ``nn.Module`` adapter is switched to eval (no dropout)."""
        if isinstance(self.adapter, torch.nn.Module):
            self.adapter.eval()
        return self

    def missing(self, feature: str) -> str | None:
        """Why ``feature`` (one of FEATURES) is unavailable, or None when it works."""
        if feature == "explain":
            return (
                f"“Explain this step” takes attnviz's own scorers apart (formula, keys and "
                f"values); {self.name} is your own code behind an adapter, whose scorer attnviz "
                "cannot see. Its attention, top-k and context are in the figure above."
            )
        if feature == "knock_out" and not getattr(self.adapter, "imposes_attention", False):
            return (
                f"Knock-out needs {self.name} to decode with an imposed attention: give the "
                "adapter imposes_attention = True and honour decode_step's attention argument."
            )
        if feature == "saliency" and not (
            hasattr(self.adapter, "embed_source") and hasattr(self.adapter, "encode_embedded")
        ):
            return (
                f"Saliency needs gradients with respect to the source embeddings: give the "
                f"adapter of {self.name} embed_source(src) and encode_embedded(embedded, "
                "src_lengths)."
            )
        return None

    def _require(self, feature: str) -> None:
        reason = self.missing(feature)
        if reason is not None:
            raise InputError(reason)

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor) -> Encoded:
        """src: (batch, src_len) long, padded; src_lengths: (batch,) long."""
        return self._encoded(self.adapter.encode(src, src_lengths), src, src_lengths)

    def source_embedding(self, src: Tensor) -> Tensor:
        """src: (batch, src_len) long -> (batch, src_len, emb), for saliency."""
        self._require("saliency")
        return self.adapter.embed_source(src)

    def encode_embedded(self, embedded: Tensor, src_lengths: Tensor) -> Encoded:
        """:meth:`encode` from source embeddings. embedded: (batch, src_len, emb)."""
        self._require("saliency")
        encoded = self.adapter.encode_embedded(embedded, src_lengths)
        return self._encoded(encoded, embedded[..., 0], src_lengths)

    def _encoded(self, encoded: Any, src: Tensor, src_lengths: Tensor) -> Encoded:
        memory, state = encoded
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths[:, None]
        bare = (isinstance(memory, Tensor), isinstance(state, Tensor))
        keys = AdaptedMemory(_as_tuple(memory, "memory"), mask, *bare)
        return Encoded(keys, _as_tuple(state, "decoder state"))  # type: ignore[arg-type]

    # -- decoder ---------------------------------------------------------------------------

    def decode_step(
        self,
        prev: Tensor,
        state: tuple[Tensor, ...],
        encoded: Encoded,
        weights: Tensor | None = None,
    ) -> StepOutput:
        """One step; shapes as :meth:`attnviz.model.AttentionRNN.decode_step`."""
        memory: AdaptedMemory = encoded.keys  # type: ignore[assignment]
        imposed = None
        if weights is not None:
            self._require("knock_out")
            imposed = weights[:, 0] if self.config.heads_used == 1 else weights
        step = self.adapter.decode_step(
            prev, state[0] if memory.bare_state else state, memory.memory, memory.mask, imposed
        )
        attention = step.attention if step.attention.dim() == 3 else step.attention[:, None]
        if step.energies is None:
            energies = torch.full_like(attention, float("nan"))  # exported as null
        else:
            energies = step.energies if step.energies.dim() == 3 else step.energies[:, None]
        context = step.context
        if context is None:
            context = attention.new_zeros(attention.shape[0], 0)
        new_state = _as_tuple(step.state, "decoder state")
        return StepOutput(step.logprobs, new_state, context, attention, energies)


def adapter_examples(translator: Translator) -> list[str]:
    """The example sources an adapted model's adapter offers (empty for other models)."""
    model = translator.model
    if not isinstance(model, AdaptedModel):
        return []
    return [str(sentence) for sentence in getattr(model.adapter, "examples", ())]


def adapted_translator(adapter: TranslationAdapter, name: str = "adapted model") -> Translator:
    """A :class:`Translator` over ``adapter`` (CheckpointError when it lacks a required
    member or its tokenizers disagree)."""
    missing = [
        member
        for member in ("source_tokenizer", "target_tokenizer", "max_src_len", "max_tgt_len")
        if not hasattr(adapter, member)
    ]
    missing += [m for m in ("encode", "decode_step") if not callable(getattr(adapter, m, None))]
    if missing:
        raise CheckpointError(
            f"{name}: the adapter has no {', '.join(missing)} (see attnviz.adapter."
            "TranslationAdapter)"
        )
    decoding = getattr(adapter, "decoding", None) or DecodingConfig()
    return Translator(
        AdaptedModel(adapter, name),  # type: ignore[arg-type]
        adapter.source_tokenizer,
        name,
        target_tokenizer=adapter.target_tokenizer,
        decoding=decoding,
    )


def word_tokenizer(words: Sequence[str], lowercase: bool = False) -> Tokenizer:
    """A tokenizer of whole words (the text split on spaces) over a vocabulary list whose
    position is the id. The list holds ``<unk>``, ``<pad>``, ``<s>`` and ``</s>``
    anywhere (e.g. the tutorial's SOS = 0, EOS = 1 as ``<s>``, ``</s>`` first)."""
    try:
        vocabulary = Vocabulary(words, "word list")
    except CheckpointError as exc:
        raise InputError(str(exc)) from None
    return ToolkitTokenizer(WordSegmenter(), vocabulary, "joeynmt", lowercase=lowercase)


# -- module:factory --------------------------------------------------------------------------


def is_factory_spec(text: str) -> bool:
    """Whether ``text`` names a factory (``package.module:factory`` or
    ``path/to/file.py:factory``) rather than a checkpoint folder."""
    module, sep, factory = text.rpartition(":")
    return bool(sep and module and factory.isidentifier() and not Path(text).exists())


def resolve_factory(spec: str) -> Any:
    """The callable ``spec`` names: ``package.module:factory`` (imported, the working folder
    on the path) or ``path/to/file.py:factory``. CheckpointError when there is none."""
    module_name, _, factory_name = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or not path.is_file():
                raise CheckpointError(f"{spec}: no Python file {path}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except CheckpointError:
        raise
    except Exception as exc:  # the user's module may fail in any way while importing
        raise CheckpointError(f"{spec}: cannot import {module_name}: {exc!r}") from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise CheckpointError(f"{spec}: {module_name} has no callable {factory_name!r}")
    return factory


def load_factory(spec: str) -> Translator:
    """Call the factory ``spec`` names (see :func:`resolve_factory`) and wrap the adapter it
    returns; the translator is named ``spec``."""
    factory = resolve_factory(spec)
    try:
        adapter = factory()
    except Exception as exc:  # the user's factory may fail in any way
        raise CheckpointError(f"{spec}: the factory failed: {exc!r}") from exc
    return adapted_translator(adapter, spec)
