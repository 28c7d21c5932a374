"""The Compare scorers view on a model and its guided twin, under AppTest on copies of the
bundled reversal-additive model; and how twins are found (attnviz.scorer_lab)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from app_helpers import PRETRAINED, add_model, figure_titled, record_downloads, run_app, url_value

from attnviz.align import PRIORS_FILE, AlignerPriors, write_priors
from attnviz.checkpoint import read_config
from attnviz.scorer_lab import (
    ALIGNER_AER,
    Family,
    default_family,
    guidance_weight,
    guided_twins,
)
from attnviz.synthetic import reversal_pairs
from attnviz.ui import word_aligner

BASE, GUIDED = "reversal-additive", "reversal-additive-guided"
TWIN = "reversal-additive/guided"
TWIN_LABEL = f"{BASE}: attention alone vs guided by the word aligner"
GUIDANCE = "\n[guidance]\nweight = 1.0\n"


@pytest.fixture(scope="module")
def reversal_priors() -> AlignerPriors:
    """Aligner priors counted from eflomal's links of a small reversal corpus."""
    pytest.importorskip("eflomal")
    from attnviz.align import statistical_align

    corpus = [(p.source, p.target) for p in reversal_pairs(80, seed=5)]
    return statistical_align(corpus).priors


def add_twins(folder: Path, priors: AlignerPriors | None = None) -> None:
    """reversal-additive and a copy of it as its guided twin (its recipe gains a guidance
    weight), both with ``priors`` saved when given."""
    add_model(folder, BASE)
    twin = add_model(folder, GUIDED, BASE)
    recipe = twin / "recipe.toml"
    recipe.write_text(recipe.read_text() + GUIDANCE)
    if priors is not None:
        for name in (BASE, GUIDED):
            write_priors(folder / name / PRIORS_FILE, priors)


def set_card_aer(folder: Path, **aer_by_method: float) -> None:
    path = folder / "card.json"
    card = json.loads(path.read_text())
    methods = {method: {"aer": aer} for method, aer in aer_by_method.items()}
    path.write_text(json.dumps({**card, "alignment": {"methods": methods}}))


def panel_titles(spec: dict) -> list[str]:
    return [a["text"] for a in spec["layout"]["annotations"]]


def captions(app) -> str:
    return " ".join(c.value for c in app.caption).replace("\\", "")


def test_a_model_and_its_guided_twin_side_by_side_with_the_aligner_aer(
    app_models, reversal_priors, monkeypatch
):
    add_twins(app_models, reversal_priors)
    set_card_aer(app_models / BASE, pieces=0.5, agree=0.25)
    set_card_aer(app_models / GUIDED, pieces=0.125)
    downloads = record_downloads(monkeypatch)
    aligned = []
    original = word_aligner.statistical_align
    monkeypatch.setattr(
        word_aligner, "statistical_align", lambda *a: aligned.append(a) or original(*a)
    )
    app = run_app(view="compare", model=GUIDED, text="a b c d", unit="pieces")
    assert not app.exception
    picker = app.selectbox(key="family")
    assert picker.value == TWIN and url_value(app, "family") == TWIN
    assert picker.options == [TWIN_LABEL]
    table = app.table[0].value
    assert list(table["model"]) == [BASE, GUIDED]
    assert list(table["training"]) == ["attention alone", "guided by the word aligner"]
    assert "scorer" not in table.columns
    # The reversal model attends to the mirrored word, which is eflomal's link too.
    assert list(table[ALIGNER_AER]) == [0.0, 0.0]
    assert len(aligned) == 1  # the same priors file: both measured against one alignment
    assert list(table["AER on the card's gold set"]) == [0.5, 0.125]
    card_agree = table["AER on the card's gold set (agree)"]
    assert card_agree[0] == 0.25 and math.isnan(card_agree[1])
    grid = figure_titled(app, f"Attention of {BASE} without and with guidance by the word")
    assert panel_titles(grid) == ["attention alone", "guided by the word aligner"]
    assert len(grid["data"]) == 2
    text = captions(app)
    assert "before and after guided training" in text and "Koehn & Knowles 2017" in text
    assert "No AER against" not in text
    assert "its attention pulled towards the word aligner's links" in text  # the grid's
    name, data = downloads["JSON"]
    assert name == "compare-reversal-additive_guided-pieces.json"
    assert [row["training"] for row in json.loads(data())["table"]] == list(table["training"])


def test_without_priors_the_twins_are_compared_and_a_caption_says_why_there_is_no_aer(
    app_models,
):
    add_twins(app_models)
    app = run_app(view="compare", model=BASE, text="a b c d")
    assert not app.exception and not app.error
    assert app.selectbox(key="family").value == TWIN
    table = app.table[0].value
    assert list(table["model"]) == [BASE, GUIDED]
    assert ALIGNER_AER not in table.columns  # nothing to show: left out
    (why,) = [c.value.replace("\\", "") for c in app.caption if "No AER against" in c.value]
    assert why.count(f"has no word aligner priors ({PRIORS_FILE})") == 2  # one per model
    assert "Traceback" not in why


def test_without_the_aligner_the_reason_is_given_once(app_models, monkeypatch):
    add_twins(app_models, AlignerPriors(lexical={"a": {"a": 1.0}}))
    monkeypatch.setitem(sys.modules, "eflomal", None)  # import eflomal: ImportError
    app = run_app(view="compare", model=BASE, text="a b c d")
    assert not app.exception
    (why,) = [c.value.replace("\\", "") for c in app.caption if "No AER against" in c.value]
    assert why.count("pip install 'attnviz[align]'") == 1
    assert ALIGNER_AER not in app.table[0].value.columns


def test_the_picker_lists_scorer_families_and_twins(app_models):
    add_twins(app_models)
    add_model(app_models, "reversal-dot")
    add_model(app_models, "reversal-general-guided", "reversal-general")  # no twin of its own
    app = run_app(view="compare", model="reversal-dot", text="a b c")
    assert not app.exception
    picker = app.selectbox(key="family")
    assert picker.options == ["reversal-* (2 models)", TWIN_LABEL]
    assert picker.value == "reversal"
    assert list(app.table[0].value["scorer"]) == ["dot", "additive"]  # as without twins
    picker.select(TWIN).run()
    assert url_value(app, "family") == TWIN
    assert list(app.table[0].value["model"]) == [BASE, GUIDED]


# -- scorer_lab -----------------------------------------------------------------------------


def write_folder(folder: Path, name: str, recipe: str | None = None, **changes) -> None:
    """A folder holding reversal-additive's config.json with ``changes`` to the model
    settings, and ``recipe`` as its recipe.toml when given."""
    raw = json.loads((PRETRAINED / BASE / "config.json").read_text())
    raw["model"].update(changes)
    (folder / name).mkdir()
    (folder / name / "config.json").write_text(json.dumps(raw))
    if recipe is not None:
        (folder / name / "recipe.toml").write_text(recipe)


def test_guided_twins_need_equal_configs_and_a_guidance_weight(tmp_path):
    for name in ("same", "wider", "unguided", "norecipe", "broken", "other-tokenizer"):
        write_folder(tmp_path, name)
    write_folder(tmp_path, "same-guided", GUIDANCE)
    write_folder(tmp_path, "wider-guided", GUIDANCE, dec_hidden=32)
    write_folder(tmp_path, "unguided-guided", "[guidance]\nweight = 0\n")
    write_folder(tmp_path, "norecipe-guided")
    write_folder(tmp_path, "broken-guided", "[guidance\nweight = 1")
    write_folder(tmp_path, "other-tokenizer-guided", GUIDANCE)
    config = tmp_path / "other-tokenizer-guided" / "config.json"
    raw = json.loads(config.read_text())
    config.write_text(json.dumps({**raw, "tokenizer": {"source": "a.model", "target": "a.model"}}))
    read_config(config)  # a valid config: left out for its tokenizer alone
    write_folder(tmp_path, "lonely-guided", GUIDANCE)
    names = [p.name for p in tmp_path.iterdir()]
    (twin,) = guided_twins(tmp_path, names)
    assert (twin.name, twin.members, twin.twin) == ("same/guided", ["same", "same-guided"], True)
    assert twin.label_of("same") == "attention alone"


def test_guidance_weight_is_read_from_the_recipe_text():
    assert guidance_weight(GUIDANCE) == 1.0
    assert guidance_weight("[guidance]\nweight = 0.1\ndecay = 0.5\n") == 0.1
    assert guidance_weight('[data]\nsynthetic = "reversal"') == 0.0
    assert guidance_weight('[guidance]\nweight = "high"') == 0.0
    assert guidance_weight("guidance = 3") == 0.0
    assert guidance_weight("[guidance\nweight = 1") == 0.0
    assert guidance_weight(None) == 0.0


def test_default_family_with_twins():
    reversal = Family("reversal", ["reversal-dot", "reversal-additive"])
    twin = Family(TWIN, [BASE, GUIDED], twin=True)
    dates = Family("dates", ["dates-dot", "dates-general"])
    assert default_family([reversal, twin], GUIDED) == TWIN
    assert default_family([dates, twin], BASE) == TWIN
    # The plain model of a pair opens the scorer lab when there is one (the view's namesake).
    lab = Family("en-fr-lab", ["en-fr-lab-dot", "en-fr-lab-general"])
    assert default_family([lab, twin], BASE) == "en-fr-lab"
    assert default_family([lab, twin], GUIDED) == TWIN
    assert default_family([reversal, twin], BASE) == "reversal"  # its scorer family first
    assert default_family([dates, twin], "reversal-dot") == "dates"
    assert Family("x", ["x-dot"]).label_of("x-dot") == "dot"
