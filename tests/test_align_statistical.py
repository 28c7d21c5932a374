"""The word aligner (eflomal, the extra attnviz[align]): links on hand-made corpora, priors,
the training pairs' links file, `attnviz align --method eflomal`, and the missing extra."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from attnviz import InputError
from attnviz.align import (
    PRIORS_FILE,
    grow_diag_final_and,
    read_pharaoh,
    read_priors,
    statistical_align,
    word_tokens,
    write_priors,
)
from attnviz.align.statistical import CORPUS_RUNS, CORPUS_SAMPLERS, SAMPLERS
from attnviz.cli import main
from attnviz.data import Pair
from attnviz.recipe import Recipe
from attnviz.synthetic import reversal_pairs
from attnviz.training.guidance import LINKS_FILE
from attnviz.training.word_links import ensure_training_links

REVERSED = [(3, 0), (2, 1), (1, 2), (0, 3)]  # "a b c d" -> "d c b a"


@pytest.fixture
def without_eflomal(monkeypatch):
    """The extra not installed: importing eflomal fails."""
    monkeypatch.setitem(sys.modules, "eflomal", None)


@pytest.fixture(scope="module")
def reversal_corpus() -> list[tuple[str, str]]:
    return [(p.source, p.target) for p in reversal_pairs(120, seed=3)]


@pytest.fixture(scope="module")
def reversal_alignment(reversal_corpus):
    pytest.importorskip("eflomal")
    return statistical_align(reversal_corpus)


def test_grow_diag_final_and_adds_a_one_way_link_only_between_unaligned_words():
    forward = {(0, 0), (1, 1), (3, 2)}
    backward = {(0, 0), (1, 1), (4, 1)}
    # Not next to the intersection, so not grown: (3, 2) joins as both its words are
    # unaligned; (4, 1) does not, as target word 1 is aligned.
    assert grow_diag_final_and(forward, backward) == {(0, 0), (1, 1), (3, 2)}


def test_punctuation_is_split_off_words_and_mapped_back():
    assert word_tokens("The car, red.") == (
        ["the", "car", ",", "red", "."],
        [0, 1, 1, 2, 2],
    )


def test_the_aligner_finds_the_reversal_of_every_pair(reversal_corpus, reversal_alignment):
    for (source, _), links in zip(reversal_corpus, reversal_alignment.links, strict=True):
        n = len(source.split())
        assert links == sorted([(n - 1 - j, j) for j in range(n)], key=lambda link: link[1])


def test_words_with_punctuation_link_whole_words():
    pytest.importorskip("eflomal")
    rng = random.Random(0)
    lexicon = {
        "the": "la", "a": "une", "house": "maison", "car": "voiture", "dog": "chien",
        "cat": "chat", "tree": "arbre", "boat": "bateau", "sees": "voit", "likes": "aime",
        "wants": "veut", "finds": "trouve",
    }  # fmt: skip
    nouns = ["house", "car", "dog", "cat", "tree", "boat"]
    pairs = []
    for _ in range(150):
        words = [
            rng.choice(["the", "a"]),
            rng.choice(nouns),
            rng.choice(["sees", "likes", "wants", "finds"]),
            rng.choice(["the", "a"]),
            rng.choice(nouns),
        ]
        end = rng.choice([".", "!", "?"])
        pairs.append((" ".join(words) + end, " ".join(lexicon[w] for w in words) + end))
    aligned = statistical_align([*pairs, ("the dog sees a cat.", "la chien voit une chat.")])
    # "cat." and "chat." are one word each: their tokens' links make one word link.
    assert aligned.links[-1] == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]


def test_priors_align_one_pair_alone_after_a_round_trip(tmp_path, reversal_alignment):
    write_priors(tmp_path / PRIORS_FILE, reversal_alignment.priors)
    priors = read_priors(tmp_path / PRIORS_FILE)
    assert priors == reversal_alignment.priors
    assert statistical_align([("a b c d", "d c b a")], priors).links == [REVERSED]


def test_pairs_aligned_with_a_corpus_get_its_evidence_and_only_their_own_links(
    reversal_corpus,
):
    """One pair alone has nothing to learn from; aligned together with the corpus it is
    reversed like the corpus, and the corpus's own links are not returned."""
    pytest.importorskip("eflomal")
    corpus = [*reversal_corpus, ("e f", "   ")]  # a corpus pair with an empty side is left out
    aligned = statistical_align([("a b c d", "d c b a")], corpus=corpus)
    assert aligned.links == [REVERSED]


def test_with_a_corpus_more_samplers_add_up_their_counts(reversal_corpus, monkeypatch):
    eflomal = pytest.importorskip("eflomal")
    asked = []

    def recording_aligner(**options):
        asked.append(options["n_samplers"])
        return aligner(**options)

    aligner = eflomal.Aligner
    monkeypatch.setattr(eflomal, "Aligner", recording_aligner)
    assert statistical_align([("a b c d", "d c b a")], corpus=reversal_corpus).links == [REVERSED]
    statistical_align([("a b", "b a")])
    assert asked == [CORPUS_SAMPLERS, SAMPLERS]
    assert CORPUS_SAMPLERS > SAMPLERS


class _ScriptedAligner:
    """Stands in for eflomal.Aligner: each run writes the next of ``RUNS`` (forward and
    backward token links of the one pair) and counts the runs."""

    RUNS = [("0-0 1-1", "0-0 1-1"), ("0-0 1-0", "0-0 1-0"), ("0-1 1-1", "0-1 1-1")]
    done = 0

    def __init__(self, **options):
        pass

    def align(self, sources, targets, links_filename_fwd, links_filename_rev, priors_input):
        forward, backward = self.RUNS[_ScriptedAligner.done % len(self.RUNS)]
        _ScriptedAligner.done += 1
        Path(links_filename_fwd).write_text(f"{forward}\n" + "\n" * (len(sources) - 1))
        Path(links_filename_rev).write_text(f"{backward}\n" + "\n" * (len(sources) - 1))


def test_with_a_corpus_the_links_most_runs_found_are_kept(monkeypatch):
    """eflomal's sampler is not seeded; with a corpus the pairs are aligned in several runs
    and a link stays when most of them have it: here (0, 0) and (1, 1) are in two of three
    runs, (1, 0) and (0, 1) in one. Without a corpus one run's links are returned as found."""
    eflomal = pytest.importorskip("eflomal")
    monkeypatch.setattr(eflomal, "Aligner", _ScriptedAligner)
    monkeypatch.setattr(_ScriptedAligner, "done", 0)
    corpus = [("x y", "y x")]
    assert statistical_align([("a b", "a b")], corpus=corpus).links == [[(0, 0), (1, 1)]]
    assert _ScriptedAligner.done == CORPUS_RUNS == 3
    _ScriptedAligner.done = 1
    assert statistical_align([("a b", "a b")]).links == [[(0, 0), (1, 0)]]
    assert _ScriptedAligner.done == 2


def test_an_empty_side_is_refused():
    pytest.importorskip("eflomal")
    with pytest.raises(InputError, match="both sides"):
        statistical_align([("a b", "  ")])


def test_without_the_extra_the_message_says_how_to_install_it(without_eflomal):
    with pytest.raises(InputError, match=r"pip install 'attnviz\[align\]'"):
        statistical_align([("a b", "b a")])


def test_training_links_are_one_line_per_pair_in_order_and_made_once(tmp_path, reversal_corpus):
    pytest.importorskip("eflomal")
    recipe = Recipe(name="guided", output=tmp_path / "run")
    recipe.output.mkdir()
    pairs = [Pair(s, t) for s, t in reversal_corpus]
    path = ensure_training_links(recipe, pairs)
    assert path == recipe.output / LINKS_FILE
    lengths = [(len(p.source.split()), len(p.target.split())) for p in pairs]
    links = read_pharaoh(path, lengths)
    assert len(links) == len(pairs)
    assert links[0] == {(len(pairs[0].source.split()) - 1 - j, j) for j in range(lengths[0][1])}
    assert (recipe.output / PRIORS_FILE).is_file()
    path.write_text("kept\n")  # a resumed run finds the file and does not align again
    assert ensure_training_links(recipe, pairs).read_text() == "kept\n"


def test_cli_aligns_lines_with_the_models_priors(tmp_path, capsys, reversal_alignment):
    (tmp_path / "model").mkdir()
    write_priors(tmp_path / "model" / PRIORS_FILE, reversal_alignment.priors)
    text = tmp_path / "pairs.txt"
    text.write_text("a b c d ||| d c b a\nno bars here\nb c ||| c b\n")
    code = main(["align", "-m", str(tmp_path / "model"), "--method", "eflomal", "-i", str(text)])
    out, err = capsys.readouterr()
    assert code == 1  # the line without "|||" failed, the others were aligned
    assert out.splitlines() == ["3-0 2-1 1-2 0-3", "", "1-0 0-1"]
    assert "line 2" in err


def test_cli_aligns_the_whole_input_together_with_a_corpus(tmp_path, capsys, reversal_corpus):
    """--aligner-corpus needs no priors: the model folder has none."""
    pytest.importorskip("eflomal")
    (tmp_path / "model").mkdir()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"{s} ||| {t}\n" for s, t in reversal_corpus) + "\n")
    text = tmp_path / "pairs.txt"
    text.write_text("a b c d ||| d c b a\nb c ||| \nb c ||| c b\n")
    args = ["align", "-m", str(tmp_path / "model"), "--method", "eflomal", "-i", str(text)]
    code = main([*args, "--aligner-corpus", str(corpus)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == ["3-0 2-1 1-2 0-3", "", "1-0 0-1"]
    assert "line 2: the aligner needs words on both sides" in err


def test_cli_names_the_bad_line_of_a_corpus_and_where_a_corpus_is_read(tmp_path, capsys):
    pytest.importorskip("eflomal")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b ||| b a\nno bars\n")
    code = main(
        ["align", "-m", str(tmp_path), "--method", "eflomal", "--aligner-corpus", str(corpus)]
    )
    assert code == 2
    assert f"{corpus}, line 2: expected 'source ||| target'" in capsys.readouterr().err
    code = main(["align", "-m", str(tmp_path), "--aligner-corpus", str(corpus)])
    assert code == 2
    assert "--aligner-corpus is read by --method eflomal and --adapt-guided" in (
        capsys.readouterr().err
    )


def test_cli_says_when_the_model_has_no_priors(tmp_path, capsys):
    pytest.importorskip("eflomal")
    (tmp_path / "model").mkdir()
    code = main(["align", "-m", str(tmp_path / "model"), "--method", "eflomal"])
    assert code == 2
    assert "has no word aligner priors" in capsys.readouterr().err


def test_cli_without_the_extra_gives_a_message_not_a_traceback(tmp_path, capsys, without_eflomal):
    code = main(["align", "-m", str(tmp_path), "--method", "eflomal"])
    err = capsys.readouterr().err
    assert code == 2
    assert "pip install 'attnviz[align]'" in err
    assert "Traceback" not in err


def test_training_links_file_is_named_as_the_guided_training_reads_it():
    assert Path(LINKS_FILE).name == "word_links.pharaoh"


def test_a_guided_recipe_trains_with_the_links_and_priors_in_its_checkpoint_folder(tmp_path):
    pytest.importorskip("eflomal")
    from test_train import write_small_recipe

    from attnviz.recipe import read_recipe
    from attnviz.training.corpora import split_corpora
    from attnviz.training.loop import train

    path = write_small_recipe(tmp_path)
    path.write_text(path.read_text() + "\n[guidance]\nweight = 0.5\n")
    recipe = read_recipe(path)
    folder = train(recipe)
    pairs = split_corpora(recipe)[0]
    lines = (folder / LINKS_FILE).read_text().splitlines()
    assert len(lines) == len(pairs)
    assert (folder / PRIORS_FILE).is_file()
    assert (folder / "config.json").is_file()  # the checkpoint is in the same folder
