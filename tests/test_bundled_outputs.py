"""The bundled models decode as they did before the engine was generalised (pieces exactly).

``bundled_outputs.json`` holds, for several bundled models, the tokens, scores and attention
checksums of greedy and beam-5 translations (one sentence at a time and batched) and of a
forced decode, recorded with the Bahdanau-order GRU engine they were trained with. Rerecord
only after a change that is meant to alter these models' outputs:
``python tests/test_bundled_outputs.py --record``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from attnviz.translator import Translation, load

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("bundled_outputs.json")
SENTENCES = {
    "en-fr-additive": ["the cat is on the table.", "I would like a cup of coffee, please."],
    "de-en-additive": ["Ich habe heute keine Zeit.", "Das Haus ist sehr alt."],
    "en-fr-lab-multihead": ["where is the station?", "we are going home."],
    "en-fr-lab-general": ["where is the station?", "she reads a book."],
    "dates-scaled_dot": ["12 March 1998", "Tuesday, 3 Oct 2017"],
    "reversal-dot": ["a b c d e", "k l m"],
}
TOLERANCE = 1e-4


def _checksum(attention: np.ndarray) -> float:
    """A position-weighted sum: moving weight between source positions changes it."""
    weights = np.arange(1, attention.shape[-1] + 1, dtype=np.float64)
    rows = np.arange(1, attention.shape[0] + 1, dtype=np.float64)[:, None]
    return float((attention.astype(np.float64) * weights * rows).sum())


def _summary(translation: Translation) -> dict:
    return {
        "pieces": [h.pieces for h in translation.hypotheses],
        "scores": [h.score for h in translation.hypotheses],
        "attention": _checksum(np.asarray(translation.attention)),
        "context": float(np.abs(np.stack([s.context for s in translation.steps])).sum()),
        "tree": hashlib.sha256(
            repr([(n.parent, n.piece, str(n.status)) for n in translation.beam_tree]).encode()
        ).hexdigest(),
    }


def _outputs(name: str) -> dict:
    translator = load(ROOT / "pretrained" / name)
    texts = SENTENCES[name]
    out: dict = {}
    for beam in (1, 5):
        n_best = 1 if beam == 1 else 3
        out[f"beam{beam}"] = [
            _summary(translator.translate(t, beam_size=beam, n_best=n_best)) for t in texts
        ]
        batch = translator.translate_batch(texts, beam_size=beam, n_best=n_best)
        out[f"batch{beam}"] = [_summary(t) for t in batch]
    best = translator.translate(texts[0], beam_size=5).target_pieces
    out["prefix"] = _summary(translator.translate(texts[1], beam_size=5, prefix=best[:1]))
    score = translator.score(texts[0], best)
    out["forced"] = {"logprob": score.logprob, "attention": _checksum(score.attention)}
    return out


def close(recorded: float) -> object:
    return pytest.approx(recorded, rel=TOLERANCE)


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_bundled_model_decodes_as_recorded(name):
    # Pieces and beam trees must match exactly; numbers within TOLERANCE, since float32
    # products sum in another order on another CPU (AVX-512 kernels against AVX2: relative
    # differences up to 1.1e-5 seen), while a change to the engine moves them far more.
    expected = json.loads(RECORD.read_text())[name]
    actual = _outputs(name)
    for key in ("beam1", "beam5", "batch1", "batch5"):
        for got, want in zip(actual[key], expected[key], strict=True):
            assert got["pieces"] == want["pieces"], (name, key)
            assert got["tree"] == want["tree"], (name, key)
            np.testing.assert_allclose(got["scores"], want["scores"], rtol=TOLERANCE, atol=1e-5)
            assert got["attention"] == close(want["attention"])
            assert got["context"] == close(want["context"])
    assert actual["prefix"]["pieces"] == expected["prefix"]["pieces"]
    assert actual["prefix"]["attention"] == close(expected["prefix"]["attention"])
    assert actual["forced"]["logprob"] == close(expected["forced"]["logprob"])
    assert actual["forced"]["attention"] == close(expected["forced"]["attention"])


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    recorded = {name: _outputs(name) for name in sorted(SENTENCES)}
    RECORD.write_text(json.dumps(recorded, indent=1) + "\n")
