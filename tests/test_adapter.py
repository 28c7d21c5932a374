"""Your own PyTorch model through an adapter: the PyTorch tutorial's EncoderRNN and
AttnDecoderRNN (attnviz.examples.tutorial_seq2seq), trained for a few seconds, through every
search, trace and analysis; an adapter with only the required members; factories by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adapted_models import REQUIRED_ONLY, TUTORIAL, required_only, tutorial

from attnviz import cli
from attnviz.adapter import (
    AdaptedModel,
    adapted_translator,
    is_factory_spec,
    load_factory,
    word_tokenizer,
)
from attnviz.align import align, align_batch
from attnviz.analysis import attribution, knock_out
from attnviz.errors import CheckpointError, InputError
from attnviz.examples.tutorial_seq2seq import (
    PAIRS,
    AttnDecoderRNN,
    EncoderRNN,
    TutorialAdapter,
    vocabulary,
)
from attnviz.explain import explain_step
from attnviz.figures.steps import step_figure


@pytest.fixture(scope="module")
def translator():
    return adapted_translator(tutorial(), "tutorial")


def test_the_adapter_step_is_the_tutorial_s_own_step():
    """On one unpadded sentence the adapter's encoder and masked step compute what the
    tutorial's EncoderRNN.forward and AttnDecoderRNN.forward_step compute."""
    torch.manual_seed(3)
    words = vocabulary([s for s, _ in PAIRS])
    encoder, decoder = EncoderRNN(len(words), 16), AttnDecoderRNN(16, len(words))
    adapter = TutorialAdapter(encoder, decoder, words, words).eval()
    src = torch.tensor([[4, 5, 6, 7, 1]])
    with torch.no_grad():
        outputs, hidden = encoder(src)
        memory, state = adapter.encode(src, torch.tensor([5]))
        torch.testing.assert_close(memory, outputs)
        torch.testing.assert_close(state, hidden[0])
        logits, new_hidden, weights = decoder.forward_step(torch.tensor([[0]]), hidden, outputs)
        step = adapter.decode_step(torch.tensor([0]), state, memory, torch.ones(1, 5, dtype=bool))
    torch.testing.assert_close(step.logprobs, torch.log_softmax(logits[:, 0], -1))
    torch.testing.assert_close(step.state, new_hidden[0])
    torch.testing.assert_close(step.attention, weights[:, 0])
    torch.testing.assert_close(torch.softmax(step.energies, -1), step.attention)


def test_the_trained_example_translates_its_corpus_greedy_and_batched(translator):
    sources = [source for source, _ in PAIRS]
    targets = [target for _, target in PAIRS]
    assert [translator.translate(s, beam_size=1).text for s in sources] == targets
    assert [t.text for t in translator.translate_batch(sources, beam_size=1)] == targets
    one = translator.translate("Je suis froid .", beam_size=1)  # the source side lowercases
    assert one.source_pieces == ["je", "suis", "froid", ".", "</s>"]
    assert one.target_pieces == ["i", "am", "cold", ".", "</s>"]
    assert one.attention.shape == (5, 5)
    np.testing.assert_allclose(one.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert one.steps[0].context.shape == (32,) and np.isfinite(one.steps[0].energies).all()


def test_beam_search_gives_the_n_best_the_tree_and_batched_equals_one_at_a_time(translator):
    result = translator.translate("il est froid .", beam_size=4, n_best=4)
    assert result.text == "he is cold ." and len(result.hypotheses) == 4
    assert len({h.text for h in result.hypotheses}) == 4
    assert {n.status for n in result.beam_tree} >= {"kept", "finished", "pruned"}
    batched = translator.translate_batch(["il est froid .", "nous sommes fatigues ."], 4, 4)
    alone = [result, translator.translate("nous sommes fatigues .", 4, 4)]
    for one, many in zip(alone, batched, strict=True):
        assert [h.text for h in one.hypotheses] == [h.text for h in many.hypotheses]
        np.testing.assert_allclose(one.attention, many.attention, atol=1e-5)


def test_forced_decoding_and_prefix_continuation(translator):
    greedy = translator.translate("elle est contente .", beam_size=1)
    score = translator.score("elle est contente .", "she is happy .")
    np.testing.assert_allclose(score.attention, greedy.attention, atol=1e-6)
    np.testing.assert_allclose(score.logprob, sum(s.logprob for s in greedy.steps), rtol=1e-5)
    scores = translator.score_batch([("elle est contente .", "she is happy .")])
    np.testing.assert_allclose(scores[0].token_logprobs, score.token_logprobs, atol=1e-5)
    continued = translator.translate("elle est contente .", beam_size=2, prefix="we")
    assert continued.target_pieces[0] == "we" and continued.finished
    # Its attention gives word links like any model's, read as never taught null links.
    pair = ("elle est contente .", "she is happy .")
    assert align_batch(translator, [pair], "argmax") == [align(translator, *pair, "argmax")]
    assert len(align(translator, *pair, "argmax")) == 4


def test_saliency_and_knock_out_work_through_the_optional_members(translator):
    saliency = attribution(translator, "je suis content .", "i am happy .")
    assert saliency.saliency.shape == (5, 5)
    np.testing.assert_allclose(saliency.saliency.sum(axis=1), 1.0)
    knocked = knock_out(translator, "je suis content .", "i am happy .")
    score = translator.score("je suis content .", "i am happy .")
    np.testing.assert_allclose(knocked.prob, np.exp(score.token_logprobs), rtol=1e-4)
    assert not np.allclose(knocked.knocked_prob, knocked.prob)  # the imposed rows were used


def test_explain_this_step_says_it_needs_attnviz_s_own_scorer(translator):
    result = translator.translate("je suis froid .", beam_size=1)
    with pytest.raises(InputError, match="Explain this step.*adapter"):
        explain_step(translator, result, 0)


def test_an_adapter_with_only_the_required_members():
    translator = adapted_translator(required_only(), "required only")
    full = adapted_translator(tutorial(), "tutorial")
    result = translator.translate("tu es froid .", beam_size=3)
    assert result.text == full.translate("tu es froid .", beam_size=3).text == "you are cold ."
    assert result.steps[0].context.shape == (0,)
    assert np.isnan(result.steps[0].energies).all()  # not reported, exported as null
    with pytest.raises(InputError, match="imposes_attention"):
        knock_out(translator, "tu es froid .", "you are cold .")
    with pytest.raises(InputError, match="embed_source"):
        attribution(translator, "tu es froid .", "you are cold .")
    figure = step_figure(result.source_pieces, result.target_pieces, result.steps, 0, "t")
    titles = [a["text"] for a in figure.to_dict()["layout"]["annotations"]]
    assert "Context vector: not reported by this model" in titles


def test_an_adapter_missing_members_or_sharing_no_ids_is_refused():
    class Partial:
        source_tokenizer = target_tokenizer = word_tokenizer(["<unk>", "<pad>", "<s>", "</s>"])

    with pytest.raises(CheckpointError, match="no max_src_len, max_tgt_len, encode, decode_step"):
        adapted_translator(Partial(), "partial")  # type: ignore[arg-type]
    adapter = required_only()
    other = RequiredOnlyWithSource(adapter, word_tokenizer(["<pad>", "<unk>", "<s>", "</s>"]))
    with pytest.raises(CheckpointError, match="pad and eos ids"):
        AdaptedModel(other, "mismatched")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="<pad>"):
        word_tokenizer(["<unk>", "<s>", "</s>", "a"])


class RequiredOnlyWithSource:
    def __init__(self, inner, source_tokenizer) -> None:
        self.__dict__.update(vars(inner))
        self.source_tokenizer = source_tokenizer


def test_factories_by_module_or_file_and_their_errors(tmp_path):
    assert is_factory_spec(TUTORIAL) and not is_factory_spec("en-fr-additive")
    assert load_factory(REQUIRED_ONLY).name == REQUIRED_ONLY
    factory_file = tmp_path / "mine.py"
    factory_file.write_text(
        "from adapted_models import tutorial\n\ndef make():\n    return tutorial()\n"
    )
    translated = load_factory(f"{factory_file}:make").translate("ils sont fatigues .", 1)
    assert translated.text == "they are tired ."
    with pytest.raises(CheckpointError, match="cannot import no_such_module"):
        load_factory("no_such_module:make")
    with pytest.raises(CheckpointError, match="no callable 'missing'"):
        load_factory("adapted_models:missing")
    factory_file.write_text("def make():\n    raise RuntimeError('no weights here')\n")
    with pytest.raises(CheckpointError, match="the factory failed.*no weights here"):
        load_factory(f"{factory_file}:make")


def test_the_shipped_example_factory_builds_and_translates():
    translator = load_factory("attnviz.examples.tutorial_seq2seq:build")
    assert translator.translate("vous etes contents .", beam_size=1).text == "you are happy ."


def test_translate_command_takes_a_factory(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("je suis fatigue .\n"))
    assert cli.main(["translate", "-m", TUTORIAL, "--beam", "1"]) == 0
    assert capsys.readouterr().out == "i am tired .\n"
    assert cli.main(["translate", "-m", "adapted_models:nothing"]) == 2
    assert "no callable 'nothing'" in capsys.readouterr().err


def test_app_command_checks_the_factory_and_hands_it_to_the_server(monkeypatch, capsys):
    from attnviz.ui.models import ADAPTED_MODEL_ENV

    seen = []

    def fake_execv(path, command):
        seen.append(__import__("os").environ.get(ADAPTED_MODEL_ENV))
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execv", fake_execv)
    monkeypatch.setenv(ADAPTED_MODEL_ENV, "")  # recorded, so the value the app sets is undone
    assert cli.main(["app", "--model", "adapted_models:nothing"]) == 2
    assert "no callable 'nothing'" in capsys.readouterr().err and not seen
    with pytest.raises(SystemExit):
        cli.main(["app", "--model", TUTORIAL])
    assert seen == [TUTORIAL]
