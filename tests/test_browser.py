"""End to end: the real app server, driven in headless Chromium through Playwright.

The README's screenshots are retaken by assets/screenshots.py. In CI the browser is
required (ATTNVIZ_REQUIRE_BROWSER=1); elsewhere the test skips when Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import attnviz

ROOT = Path(__file__).resolve().parents[1]
FLAGSHIP = ROOT / "pretrained" / "en-fr-additive"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

pytestmark = pytest.mark.browser


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("ATTNVIZ_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here: apt-get install chromium")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(reversal_checkpoint, tmp_path):
    """`streamlit run app.py` on a free port: the bundled flagship if present, else the
    reversal model."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not (FLAGSHIP / "config.json").is_file():
        shutil.copytree(reversal_checkpoint, tmp_path / "models" / "reversal-additive")
        env["ATTNVIZ_MODELS"] = str(tmp_path / "models")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the app server did not start: " + process.stderr.read().decode()[-2000:])
    # The model the app opens with: the flagship when bundled, else the only one.
    default = FLAGSHIP if "ATTNVIZ_MODELS" not in env else reversal_checkpoint
    yield url, default
    process.terminate()
    process.wait(timeout=20)


def test_type_a_sentence_see_the_heatmap_and_reopen_the_link(server):
    from playwright.sync_api import expect, sync_playwright

    url, model = server
    sentence = "k l m n" if "reversal" in model.name else "The red car is fast."
    expected = attnviz.load(model).translate(sentence, beam_size=5).text  # the app's default
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="networkidle")
        box = page.get_by_label("Sentence to translate")
        box.fill(sentence)
        box.press("Enter")  # a one-line box: Enter translates
        expect(page.get_by_text(expected).first).to_be_visible(timeout=60_000)
        heatmap = page.locator(".js-plotly-plot .main-svg").first
        expect(heatmap).to_be_visible(timeout=60_000)
        expect(page.locator(".js-plotly-plot .xtick text").first).to_be_visible()
        page.wait_for_function(
            "() => new URLSearchParams(location.search).get('text') !== null", timeout=30_000
        )
        shared = page.url
        assert "text=" in shared
        second = browser.new_page(viewport={"width": 1400, "height": 1000})
        second.goto(shared, wait_until="networkidle")
        expect(second.get_by_label("Sentence to translate")).to_have_value(sentence, timeout=60_000)
        expect(second.get_by_text(expected).first).to_be_visible(timeout=60_000)
        expect(second.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=60_000)
        browser.close()


VIEW_SENTENCE = "The dog is running in the snow."


@pytest.mark.parametrize("view", ["step", "compare", "beam", "whatif", "checkpoint"])
def test_every_view_draws_its_figures_from_a_link(server, view):
    from playwright.sync_api import expect, sync_playwright

    url, model = server
    sentence = "k l m n" if "reversal" in model.name else VIEW_SENTENCE
    query = urllib.parse.urlencode({"view": view, "text": sentence, "beam": 3, "step": 2})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?{query}", wait_until="networkidle")
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=90_000)
        page.wait_for_load_state("networkidle")
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_label("Sentence to translate").first.input_value() == sentence
        browser.close()


@pytest.mark.parametrize("view", ["align", "beam"])
def test_markup_in_a_sentence_is_shown_never_run(server, view):
    from playwright.sync_api import expect, sync_playwright

    url, _ = server
    sentence = "<img src=x onerror=alert(1)> <b>bold</b>"
    query = urllib.parse.urlencode({"view": view, "text": sentence})
    dialogs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda dialog: dialogs.append(dialog.message) or dialog.dismiss())
        page.goto(f"{url}/?{query}", wait_until="networkidle")
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=90_000)
        page.wait_for_load_state("networkidle")
        ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
        assert any("<" in t for t in ticks)  # the angle bracket is drawn as a character
        assert page.locator("img[src='x']").count() == 0
        assert page.locator(".main b, [data-testid='stMain'] b").all_text_contents() == []
        assert dialogs == []
        browser.close()


# 35 words: on a projector at 1024x768 this used to push the attended word, the current token
# and its probability, the colour bar and the second hypothesis past the right edge.
LONG_SENTENCE = (
    "The old man who lived in the small house near the river walked to the market every "
    "morning to buy fresh bread and milk for his wife and his three young children today."
)
SCREENS = [(1024, 768), (1280, 720)]


def within_screen(page, locator, what: str) -> None:
    """``locator`` lies inside the viewport: across without any sideways scrolling, and
    down once scrolled to (the page scrolls vertically; figures must not scroll sideways)."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    box = locator.evaluate("e => { const r = e.getBoundingClientRect(); return [r.left, r.right] }")
    assert box[0] >= 0 and box[1] <= width, f"{what} is at x {box}, the screen is {width} wide"
    box = locator.evaluate(
        "e => { e.scrollIntoView({block: 'center', inline: 'nearest'});"
        " const r = e.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom] }"
    )
    assert box[0] >= 0 and box[1] <= width, f"{what} needed sideways scrolling: {box}"
    assert box[2] >= 0 and box[3] <= height, f"{what} is at y {box[2:]}, the screen is {height}"


def open_view(browser, url: str, size: tuple[int, int], **query):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{url}/?{urllib.parse.urlencode(query)}", wait_until="networkidle")
    expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=120_000)
    page.wait_for_load_state("networkidle")
    assert page.locator('[data-testid="stException"]').count() == 0
    return page


def test_a_long_sentence_keeps_what_matters_on_screen(server):
    from playwright.sync_api import expect, sync_playwright

    url, model = server
    sentence = (
        " ".join("abcdefghijklmnopqrstuvwxyz"[:20]) if "reversal" in model.name else LONG_SENTENCE
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        for size in SCREENS:
            # Step through, at a late step: the token, its probability, every source label
            # (the attended word among them) and the colour bar.
            page = open_view(browser, url, size, view="step", text=sentence, step=18)
            figure = page.locator(".st-key-step-figure .js-plotly-plot").first
            title = figure.locator(".gtitle")
            expect(title).to_contain_text("step 18 of")
            expect(title).to_contain_text("p = ")
            within_screen(page, title, f"the step's token and probability at {size}")
            within_screen(page, figure.locator(".colorbar").first, f"the colour bar at {size}")
            labels = figure.locator(".xaxislayer-above text")
            assert labels.count() >= 20
            for i in range(labels.count()):
                within_screen(page, labels.nth(i), f"source label {i} at {size}")
            page.close()
            # Align: the whole source and the colour bar.
            page = open_view(browser, url, size, view="align", text=sentence)
            figure = page.locator(".st-key-heatmap .js-plotly-plot").first
            within_screen(page, figure.locator(".colorbar").first, f"Align's colour bar at {size}")
            labels = figure.locator(".xaxislayer-above text")
            assert labels.count() >= 20
            within_screen(page, labels.last, f"Align's last source word at {size}")
            page.close()
            # Beam search: the second hypothesis after the divergence.
            page = open_view(browser, url, size, view="beam", text=sentence)
            divergence = page.locator(".st-key-beam-divergence .js-plotly-plot").first
            second = divergence.locator(".annotation-text").filter(has_text="rank 1:")
            within_screen(page, second, f"the second hypothesis at {size}")
            within_screen(page, divergence.locator(".colorbar").first, f"its colour bar at {size}")
            page.close()
        browser.close()


def test_presentation_mode_puts_the_figure_on_the_first_screen(server):
    from playwright.sync_api import expect, sync_playwright

    url, model = server
    sentence = "k l m n" if "reversal" in model.name else VIEW_SENTENCE
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        page = open_view(browser, url, (1280, 720), view="step", text=sentence, present=1)
        # No sidebar, no app title, the controls folded; no Deploy button, no menu.
        expect(page.get_by_text("Sentence and settings")).to_be_visible()
        expect(page.get_by_label("Sentence to translate")).to_be_hidden()
        sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
        assert sidebar is None or sidebar["x"] + sidebar["width"] <= 0  # closed
        assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
        assert page.locator('[data-testid="stMainMenu"]').count() == 0
        # The token, its probability and the attention over the source, without scrolling.
        figure = page.locator(".st-key-step-figure .js-plotly-plot").first
        for part in (figure.locator(".gtitle"), figure.locator(".heatmaplayer").first):
            assert part.evaluate("e => e.getBoundingClientRect().bottom") < 720
        assert "present=1" in page.url  # a link keeps the mode
        # Enter in the (unfolded) sentence box translates.
        page.get_by_text("Sentence and settings").click()
        box = page.get_by_label("Sentence to translate")
        box.fill("a b" if "reversal" in model.name else "The cat sleeps.")
        box.press("Enter")
        page.wait_for_function(
            "() => new URLSearchParams(location.search).get('text') !== null"
            " && new URLSearchParams(location.search).get('text').length < 20",
            timeout=60_000,
        )
        browser.close()


LAB = [ROOT / "pretrained" / f"en-fr-lab-{s}" for s in ("additive", "dot", "general")]
THIRTEEN_WORDS = "The man gave his young daughter a small red book in the garden."


def test_the_compare_grid_of_five_models_fits_one_projector_screen(server):
    from playwright.sync_api import expect, sync_playwright

    url, _ = server
    if not all((folder / "config.json").is_file() for folder in LAB):
        pytest.skip("needs the bundled en-fr-lab-* models")
    query = urllib.parse.urlencode(
        {"view": "compare", "model": "en-fr-lab-additive", "text": THIRTEEN_WORDS}
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/?{query}", wait_until="networkidle")
        grid = page.locator(".st-key-compare-grid .js-plotly-plot").first
        expect(grid).to_be_visible(timeout=180_000)
        page.wait_for_load_state("networkidle")
        assert page.locator('[data-testid="stException"]').count() == 0
        # Five panels, each titled under it, and one colour bar for all of them.
        titles = grid.locator(".annotation-text").all_text_contents()
        scorers = {"dot", "general", "additive", "scaled_dot", "multihead"}
        assert len([t for t in titles if t in scorers]) == 5
        assert grid.locator(".colorbar").count() == 1
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280
        assert box["height"] <= 720 * 1.05  # about one screen high
        # The summary table comes first and is not cut off at the right.
        table = page.locator('[data-testid="stTable"]').first
        table_box = table.bounding_box()
        assert table_box["y"] < box["y"]
        assert table_box["x"] + table_box["width"] <= 1280
        widths = table.evaluate("e => [e.clientWidth, e.scrollWidth]")
        assert widths[1] <= widths[0] + 1  # no column hidden behind a scrollbar
        browser.close()
