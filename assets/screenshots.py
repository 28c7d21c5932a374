"""Retake the README's screenshots (assets/*.png) from the running app, at 1280x800.

    .venv/bin/python assets/screenshots.py [--out assets] [--chromium /usr/bin/chromium]

Starts ``streamlit run app.py`` on a free loopback port (the bundled models), opens each view
from a link in headless Chromium, scrolls its first figure to just under the translation and
saves the screen. Needs Playwright (a dev dependency) and Chromium.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREEN = {"width": 1280, "height": 800}
# file name -> the link's query: each view with a sentence that shows what it is for.
SHOTS = {
    "align": {"view": "align", "text": "The old man walked to the market to buy fresh bread."},
    "step": {"view": "step", "text": "The dog is running in the snow.", "step": 3},
    "compare": {"view": "compare", "text": "The red car is fast."},
    "beam": {"view": "beam", "text": "The dog is running in the snow.", "beam": 3},
    "whatif": {"view": "whatif", "text": "The dog is running in the snow."},
    "checkpoint": {"view": "checkpoint", "text": "The dog is running in the snow."},
}
ABOVE_FIGURE_PX = 140  # how much of the page above the first figure stays in the picture


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")]
    command += ["--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the app server did not start")


def take(page, url: str, query: dict, path: Path) -> None:
    page.goto(f"{url}/?{urllib.parse.urlencode(query)}", wait_until="networkidle")
    figure = page.locator(".js-plotly-plot").first
    figure.wait_for(timeout=180_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)  # Plotly's last relayout
    figure.evaluate(f"e => {{ e.scrollIntoView(); window.scrollBy(0, -{ABOVE_FIGURE_PX}); }}")
    # Streamlit scrolls its main section, not the window.
    page.evaluate(
        f"() => document.querySelector('[data-testid=\"stMain\"]')?.scrollBy(0, -{ABOVE_FIGURE_PX})"
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    print(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_app(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport=SCREEN)
            for name, query in SHOTS.items():
                take(page, f"http://127.0.0.1:{port}", query, args.out / f"{name}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
