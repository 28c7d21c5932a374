"""Checks shared by the model tests."""

from __future__ import annotations

import torch

from attnviz.model import AttentionRNN


def assert_teacher_forcing_equals_decode_steps(
    model: AttentionRNN, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor
) -> None:
    """The teacher-forced forward pass gives, at every step, the log-probs and attention of
    ``decode_step`` fed the same previous tokens.

    src: (batch, src_len); lengths: (batch,); tgt_in: (batch, tgt_len)
    """
    with torch.no_grad():
        logits, attention = model(src, lengths, tgt_in, return_attention=True)
        encoded = model.encode(src, lengths)
        state = encoded.state
        for t in range(tgt_in.shape[1]):
            out = model.decode_step(tgt_in[:, t], state, encoded)
            state = out.state
            torch.testing.assert_close(out.logprobs, logits[:, t].log_softmax(-1))
            torch.testing.assert_close(out.attention, attention[:, t])
