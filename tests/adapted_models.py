"""Factories for ``attnviz app --model`` / ``-m module:factory`` in the tests: the tutorial
example trained once per test process, and the same model behind an adapter that offers only
the protocol's required members."""

from __future__ import annotations

from functools import cache

from torch import Tensor

from attnviz.adapter import AdapterStep
from attnviz.examples.tutorial_seq2seq import TutorialAdapter, build

TUTORIAL = "adapted_models:tutorial"
REQUIRED_ONLY = "adapted_models:required_only"


@cache
def tutorial() -> TutorialAdapter:
    """The worked example, trained once (a few seconds) and shared by the tests."""
    return build()


class RequiredOnly:
    """The tutorial model behind the protocol's required members only: no context vector, no
    energies, no imposed attention, no source embeddings; its state is a bare tensor."""

    def __init__(self, inner: TutorialAdapter) -> None:
        self.inner = inner
        self.source_tokenizer = inner.source_tokenizer
        self.target_tokenizer = inner.target_tokenizer
        self.max_src_len = inner.max_src_len
        self.max_tgt_len = inner.max_tgt_len

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.inner.encode(src, src_lengths)

    def decode_step(
        self,
        prev: Tensor,
        state: Tensor,
        memory: Tensor,
        mask: Tensor,
        attention: Tensor | None = None,
    ) -> AdapterStep:
        assert attention is None  # attnviz never imposes attention on this adapter
        step = self.inner.decode_step(prev, state, memory, mask)
        return AdapterStep(step.logprobs, step.state, step.attention)


def required_only() -> RequiredOnly:
    return RequiredOnly(tutorial())
