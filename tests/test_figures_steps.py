"""The step-through and What-if figures, built from hand-made steps with known numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attnviz.export import figure_html
from attnviz.figures.probability import token_probability_figure
from attnviz.figures.steps import attention_rows, output_text, step_figure, topk_bars
from attnviz.figures.style import CHOSEN_COLOR, FIT_PX
from attnviz.translator import Candidate, Step, load

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"

SOURCE = ["▁le", "▁<b>chat</b>", "</s>"]
TARGET = ["▁the", "▁<script>", "</s>"]


def make_step(index: int, piece: str, heads: int = 1, candidates: tuple = ()) -> Step:
    """A step whose attention peaks on source position ``index`` (wrapping around)."""
    head_attention = np.full((heads, len(SOURCE)), 0.1 / (len(SOURCE) - 1))
    head_attention[:, index % len(SOURCE)] = 0.9
    head_attention[-1] = head_attention[-1][::-1]  # the last head looks elsewhere
    candidates = candidates or ((piece, 0.7), ("▁a", 0.2), ("▁an", 0.1))
    return Step(
        index=index,
        piece=piece,
        prob=dict(candidates).get(piece, 0.01),
        logprob=float(np.log(dict(candidates).get(piece, 0.01))),
        candidates=[Candidate(p, q, float(np.log(q))) for p, q in candidates],
        attention=head_attention.mean(axis=0),
        head_attention=head_attention,
        energies=np.log(head_attention),
        context=np.linspace(-1.0, 2.0, 8) * (index + 1),
    )


def steps(heads: int = 1) -> list[Step]:
    return [make_step(i, piece, heads) for i, piece in enumerate(TARGET)]


def test_step_figure_shows_the_chosen_step_and_one_frame_per_step():
    figure = step_figure(SOURCE, TARGET, steps(), 1, "model")
    attention, bars, context = figure.data
    np.testing.assert_array_equal(attention.z, [steps()[1].attention])
    assert (attention.zmin, attention.zmax) == (0.0, 1.0)
    np.testing.assert_array_equal(context.z, [steps()[1].context])
    assert [f.name for f in figure.frames] == ["1", "2", "3"]
    for step, frame in zip(steps(), figure.frames, strict=True):
        np.testing.assert_array_equal(frame.data[0].z, [step.attention])
        assert f"step {step.index + 1} of 3" in frame.layout.title.text
    play = figure.layout.updatemenus[0].buttons[0]
    assert play.method == "animate" and play.args[0] is None  # None: every frame, in order


def test_every_frame_keeps_the_same_size_and_context_colours():
    first, last = (step_figure(SOURCE, TARGET, steps(), i, "m") for i in (0, 2))
    assert (first.layout.width, first.layout.height) == (last.layout.width, last.layout.height)
    limits = {(f.data[2].zmin, f.data[2].zmax) for f in first.frames}
    assert limits == {(-6.0, 6.0)}  # the largest |context| over all steps, at every step


def test_chosen_token_is_highlighted_and_added_when_outside_the_top_k():
    step = make_step(0, "▁rare", candidates=(("▁the", 0.6), ("▁a", 0.3)))
    pieces, probs, chosen = topk_bars(step)
    assert pieces == ["▁the", "▁a", "▁rare"] and chosen == 2 and probs[2] == step.prob
    figure = step_figure(SOURCE, ["▁rare"], [step], 0, "m")
    colours = list(figure.data[1].marker.color)
    assert colours == [colours[0], colours[0], CHOSEN_COLOR] and colours[0] != CHOSEN_COLOR
    assert list(figure.layout.yaxis2.ticktext) == pieces


def test_multihead_steps_show_the_mean_then_each_head():
    figure = step_figure(SOURCE, TARGET, steps(heads=2), 0, "m")
    rows = np.asarray(figure.data[0].z)
    assert list(figure.layout.yaxis.ticktext) == ["mean of heads", "head 1", "head 2"]
    np.testing.assert_array_equal(rows[1:], steps(heads=2)[0].head_attention)
    np.testing.assert_allclose(rows[0], rows[1:].mean(axis=0))


def test_output_so_far_highlights_this_step_and_wraps():
    text = output_text(["▁a", "▁<b>", "▁c"], 1, chars_per_line=80)
    assert text == f'▁a <b><span style="color:{CHOSEN_COLOR}">▁&lt;b&gt;</span></b>'
    assert "▁c" not in text  # not yet written at step 2
    assert output_text(["▁word"] * 10, 9, chars_per_line=14).count("<br>") == 4


def test_markup_in_tokens_and_title_is_escaped():
    figure = step_figure(SOURCE, TARGET, steps(), 1, "<i>model</i>")
    assert figure.layout.xaxis.ticktext[1] == "▁&lt;b&gt;chat&lt;/b&gt;"
    assert figure.layout.title.text.startswith("&lt;i&gt;model&lt;/i&gt;")
    assert "“▁&lt;script&gt;”" in figure.layout.title.text
    assert "<script>" not in figure.to_json()


def test_token_probabilities_are_coloured_and_surprising_ones_marked():
    probs = np.array([0.9, 0.05, 0.5, 0.001])
    figure = token_probability_figure(["▁a", "▁<x>", "▁c", "</s>"], np.log(probs), "t")
    bars, marks = figure.data[:2]
    np.testing.assert_allclose(bars.y, probs)
    np.testing.assert_allclose(bars.marker.color, probs)
    assert (bars.marker.cmin, bars.marker.cmax) == (0.0, 1.0)
    assert list(bars.text) == ["0.9", "0.05", "0.5", "0.001"]
    assert list(marks.x) == [1, 3]
    assert list(figure.layout.xaxis.ticktext) == ["▁a", "▁&lt;x&gt;", "▁c", "&lt;/s&gt;"]
    assert "log p = -3.00" in bars.customdata[1]


def test_the_exported_page_waits_for_its_play_button():
    # Auto-play would run the frames on load, and heatmaps stay blank while it plays.
    page = figure_html(step_figure(SOURCE, TARGET, steps(), 0, "m"), "step")
    assert "addFrames" in page and "Plotly.animate(" not in page


def test_the_step_figures_context_strip_has_a_colour_scale():
    figure = step_figure(SOURCE, TARGET, steps(), 1, "model")
    context = figure.data[2]
    assert context.showscale is not False
    assert context.colorbar.title.text == "value"
    assert context.zmin == -context.zmax


def test_a_long_source_wraps_and_the_figure_fits_the_screen():
    translation = load(PRETRAINED / "reversal-multihead").translate(
        " ".join("abcdefghijklmnopqrstuvwxyz"), beam_size=1
    )
    source = translation.source_pieces
    figure = step_figure(source, translation.target_pieces, translation.steps, 3, "m")
    assert figure.layout.width <= FIT_PX
    # data[0..2]: first attention line, top-k, context; then the other attention lines
    lines = [figure.data[0], *figure.data[3:]]
    assert len(lines) > 1 and all(t.type == "heatmap" for t in lines)
    assert [x for t in lines for x in t.x] == list(range(len(source)))
    np.testing.assert_array_equal(
        np.hstack([t.z for t in lines]), attention_rows(translation.steps[3])[0]
    )
    for frame in figure.frames:  # every frame wraps the same way
        assert [t.type for t in frame.data] == [t.type for t in figure.data]
    assert "“" in figure.layout.title.text and "p = " in figure.layout.title.text
