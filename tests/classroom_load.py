"""Classroom load test: many people on one app server, each typing sentences into Align.

    .venv/bin/python tests/classroom_load.py --sessions 30 --duration 60 [--json FILE]

It starts the app (``streamlit run app.py``, headless, on a free loopback port) and drives N
concurrent sessions as clients of Streamlit's own websocket protocol (``/_stcore/stream``),
as a browser tab does: a ``BackMsg`` with ``rerun_script`` goes up, ``ForwardMsg`` deltas
come down. Each session opens with a sentence in the URL query string (``?text=...``, like a
shared link), then enters further sentences by setting the text box's value through its
widget id (taken from the text_input delta), as typing does. Sentences come from
assets/examples.txt: each session's first is an example unchanged (the whole class clicking
the same example; after the first, st.cache_data serves it), the others are variations
unique to the session, so they are decoded.

Per sentence it measures the time from sending the rerun to the heatmap's ``plotly_chart``
delta, and to the script's end. Errors: an exception element or an error alert in the page,
a run that ends without a heatmap, a timeout, a dropped connection. The server's peak
resident memory is its VmHWM from /proc. Everything stays on 127.0.0.1, every wait is
bounded, and the server is killed at the end. Not collected by pytest
(tests/test_classroom_load.py runs a 2-session smoke test of it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples.txt"
# Words spliced into the examples so that each session's later sentences are its own.
EXTRA_WORDS = (
    "today", "yesterday", "really", "very", "small", "big", "old", "new", "green", "blue",
    "quickly", "slowly", "again", "here", "there", "now", "then", "always", "never", "also",
)  # fmt: skip
SERVER_START_S = 90
TEACHER_SENTENCE = "Good morning, everyone."  # not among the class's sentences
SERVER_STOP_S = 20


@dataclass
class Measurement:
    """One sentence entered by one session."""

    session: int
    index: int  # the session's n-th sentence
    text: str
    model: str  # as the page's URL names it after the run
    via: str  # "url": a new session's query string; "widget": the text box set by widget id
    repeat: bool  # the same text was translated before: st.cache_data serves it
    chart_ms: float | None  # rerun sent -> the heatmap's plotly_chart delta
    finished_ms: float | None  # rerun sent -> script finished
    error: str | None


# ---------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """``streamlit run app.py`` on a free loopback port, for the length of a ``with`` block."""

    def __init__(self, models: Path | None, log: Path) -> None:
        self.models = models
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AppServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.models is not None:
            env["ATTNVIZ_MODELS"] = str(self.models)
        command = [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
            "--server.headless=true", f"--server.port={self.port}",
            "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
        ]  # fmt: skip
        with open(self.log, "wb") as log:  # the server writes on to its own copy
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"the app server did not start:\n{self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=SERVER_STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback")

    def _proc(self, name: str) -> str:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/{name}").read_text()

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far (VmHWM)."""
        for line in self._proc("status").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/<pid>/status")

    def cpu_seconds(self) -> float:
        fields = self._proc("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# One browser session over the websocket


class PageError(Exception):
    """The run ended without a heatmap, or the page showed an error."""


class Session:
    """A browser tab: it keeps the URL query string and the text box's widget id."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.query = ""
        self.text_widget: str | None = None

    async def open(self, query: dict[str, str]) -> float:
        """First run of a new session, its state from the URL query string."""
        back = BackMsg()
        back.rerun_script.query_string = urllib.parse.urlencode(query)
        return await self._run(back)

    async def type_text(self, text: str) -> float:
        """Rerun with the text box holding ``text``, as after typing into it."""
        if self.text_widget is None:
            raise PageError("the page has no text box")
        back = BackMsg()
        back.rerun_script.query_string = self.query
        widget = back.rerun_script.widget_states.widgets.add()
        widget.id = self.text_widget
        widget.string_value = text
        return await self._run(back)

    async def _run(self, back: BackMsg) -> float:
        """Send a rerun and read its messages to the end; the time to the heatmap (ms)."""
        start = time.perf_counter()
        await self.ws.send(back.SerializeToString())
        chart_ms, problem = None, None
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self.ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                shown = element.WhichOneof("type")
                if shown == "plotly_chart" and chart_ms is None:
                    chart_ms = (time.perf_counter() - start) * 1000
                elif shown == "text_input" and self.text_widget is None:
                    self.text_widget = element.text_input.id
                elif shown == "exception":
                    problem = problem or f"exception: {element.exception.message[:200]}"
                elif shown == "alert" and element.alert.format == Alert.ERROR:
                    problem = problem or f"error alert: {element.alert.body[:200]}"
            elif kind == "script_finished":
                if msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue
                if problem or chart_ms is None:
                    raise PageError(problem or "the run ended without a heatmap")
                return chart_ms


async def enter(
    session: Session, text: str, first: bool, model: str | None, timeout: float
) -> tuple[float | None, float | None, str | None]:
    """(ms to the heatmap, ms to the end of the run, error) of entering one sentence."""
    start = time.perf_counter()
    query = {"view": "align", "text": text, **({"model": model} if model else {})}
    run = session.open(query) if first else session.type_text(text)
    try:
        chart_ms = await asyncio.wait_for(run, timeout)
    except TimeoutError:
        return None, None, f"timeout after {timeout:.0f} s"
    except PageError as exc:
        return None, (time.perf_counter() - start) * 1000, str(exc)
    except ConnectionClosed as exc:
        return None, None, f"disconnect: {exc}"
    return chart_ms, (time.perf_counter() - start) * 1000, None


# ---------------------------------------------------------------------------------------------
# The class


def examples() -> list[str]:
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines() if EXAMPLES.is_file() else []
    return [line for line in lines if line.strip()] or ["The red car is fast."]


def vary(sentence: str, rng: random.Random) -> str:
    """The sentence with two extra words put in before its last word."""
    words = sentence.split()
    at = max(len(words) - 1, 1)
    return " ".join(words[:at] + rng.sample(EXTRA_WORDS, 2) + words[at:])


def plan(sessions: int, per_session: int, seed: int = 0) -> list[list[str]]:
    """Each session's sentences: an example as is, then variations no other session types."""
    pool = examples()
    used = set(pool)
    result = []
    for i in range(sessions):
        rng = random.Random(seed * 100_003 + i)
        texts = [pool[i % len(pool)]]
        for _ in range(100 * per_session):  # 20 x 19 word pairs per example: rarely taken
            if len(texts) == per_session:
                break
            candidate = vary(pool[(i + len(texts)) % len(pool)], rng)
            if candidate not in used:
                texts.append(candidate)
                used.add(candidate)
        else:
            raise ValueError(f"cannot make {sessions} x {per_session} different sentences")
        result.append(texts)
    return result


@dataclass
class Classroom:
    """What all sessions share: the server, the settings, and the results so far."""

    ws_url: str
    model: str | None
    duration: float
    timeout: float
    results: list[Measurement]
    translated: set[str]  # texts translated by now, in the app's shared st.cache_data
    teacher_ms: float | None = None  # the unmeasured first open, which loads the model


async def person(room: Classroom, i: int, texts: list[str], delay: float) -> None:
    """Session ``i``: opens the app after ``delay`` s, then enters ``texts`` one by one,
    spread over the duration with a little random thinking time."""
    rng = random.Random(i)
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    start, interval = loop.time(), room.duration / len(texts)
    try:
        async with connect(
            room.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=room.timeout
        ) as ws:
            session = Session(ws)
            for j, text in enumerate(texts):
                await asyncio.sleep(
                    max(start + interval * (j + rng.uniform(0, 0.3)) - loop.time(), 0)
                )
                repeat = text in room.translated
                chart, finished, error = await enter(
                    session, text, j == 0, room.model, room.timeout
                )
                shown = urllib.parse.parse_qs(session.query).get("model", ["?"])[0]
                via = "url" if j == 0 else "widget"
                room.results.append(
                    Measurement(i, j, text, shown, via, repeat, chart, finished, error)
                )
                if error is None:
                    room.translated.add(text)
                elif error.startswith(("timeout", "disconnect")):
                    return  # this tab is gone; a person would reload
    except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
        error = f"disconnect: {type(exc).__name__}: {exc}"
        room.results.append(Measurement(i, -1, "", "?", "connect", False, None, None, error))


async def teacher_opens(room: Classroom) -> float | None:
    """The teacher opens the app before the class does (this first run loads the model);
    ms to its heatmap, reported apart from the class's figures. None if it failed."""
    async with connect(
        room.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=room.timeout
    ) as ws:
        chart_ms, _, error = await enter(Session(ws), TEACHER_SENTENCE, True, room.model, 120)
    return chart_ms if error is None else None


async def drive(room: Classroom, sentences: list[list[str]]) -> None:
    """Every session enters its sentences; sessions open over the first few seconds, as
    people open a link one after another."""
    room.teacher_ms = await teacher_opens(room)
    ramp = min(5.0, room.duration / 4)
    await asyncio.gather(
        *(person(room, i, texts, ramp * i / len(sentences)) for i, texts in enumerate(sentences))
    )


# ---------------------------------------------------------------------------------------------
# Report


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, as attnviz bench reports them."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": statistics.median(values) if values else None,
        "p95_ms": percentile(values, 0.95),
        "max_ms": max(values) if values else None,
    }


def summarize(measurements: list[Measurement], planned: int) -> dict[str, Any]:
    ok = [m for m in measurements if m.error is None]
    kinds = {"exception": 0, "error alert": 0, "no heatmap": 0, "timeout": 0, "disconnect": 0}
    for m in measurements:
        if m.error is not None:
            key = next((k for k in kinds if m.error.startswith(k)), "no heatmap")
            kinds[key] += 1
    sent = sum(m.index >= 0 for m in measurements)
    return {
        "sentences_planned": planned,
        "sentences_sent": sent,
        "heatmaps": len(ok),
        "cache_repeats": sum(m.repeat for m in ok),
        "heatmap": latency([m.chart_ms for m in ok]),
        "heatmap_first_via_url": latency([m.chart_ms for m in ok if m.via == "url"]),
        "heatmap_typed_via_widget": latency([m.chart_ms for m in ok if m.via == "widget"]),
        "heatmap_repeat_cached": latency([m.chart_ms for m in ok if m.repeat]),
        "heatmap_new_text": latency([m.chart_ms for m in ok if not m.repeat]),
        "script_finished": latency([m.finished_ms for m in ok]),
        "errors": {"total": sum(kinds.values()), **kinds, "not_sent": planned - sent},
        "error_examples": sorted({m.error for m in measurements if m.error})[:5],
    }


def format_report(report: dict[str, Any]) -> str:
    config, summary, server = report["config"], report["summary"], report["server"]

    def ms(value: float | None) -> str:
        return f"{value:8.0f}" if value is not None else f"{'-':>8}"

    lines = [
        f"classroom load: {config['sessions']} sessions x {config['sentences_per_session']} "
        f"sentences over {config['duration_s']:.0f} s, model {config['model']}",
        f"the teacher's first open (loads the model, not counted below): "
        f"{ms(config['teacher_first_open_ms']).strip()} ms",
        f"{'time to the heatmap':34} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}",
    ]
    rows = [
        ("all sentences", "heatmap"),
        ("  first, new session (URL)", "heatmap_first_via_url"),
        ("  typed in the text box (widget)", "heatmap_typed_via_widget"),
        ("  repeated text (cache hit)", "heatmap_repeat_cached"),
        ("  new text (decoded)", "heatmap_new_text"),
        ("time to the end of the run", "script_finished"),
    ]
    for label, key in rows:
        row = summary[key]
        lines.append(
            f"{label:34} {row['count']:6d} {ms(row['p50_ms'])} {ms(row['p95_ms'])} "
            f"{ms(row['max_ms'])}"
        )
    errors = summary["errors"]
    detail = ", ".join(f"{k} {v}" for k, v in errors.items() if k != "total")
    lines += [
        f"sentences: {summary['sentences_sent']} sent of {summary['sentences_planned']}, "
        f"{summary['heatmaps']} heatmaps, {summary['cache_repeats']} of them repeats",
        f"errors: {errors['total']} ({detail})",
        *(f"  e.g. {e}" for e in summary["error_examples"]),
        f"server: peak RSS {server['peak_rss_mb']:.0f} MB (VmHWM), CPU {server['cpu_s']:.1f} s, "
        f"{server['tracebacks']} tracebacks in its log",
    ]
    return "\n".join(lines)


def run(
    sessions: int,
    duration: float,
    sentences: int,
    models: Path | None = None,
    model: str | None = None,
    timeout: float = 60.0,
    json_path: Path | None = None,
) -> dict[str, Any]:
    """Start the server, drive the sessions, stop the server; the report as a dict."""
    sentence_plan = plan(sessions, sentences)
    results: list[Measurement] = []
    hard_limit = duration + timeout + 150  # the teacher, then the last sentence at ``duration``
    with tempfile.TemporaryDirectory() as tmp, AppServer(models, Path(tmp) / "app.log") as server:
        started = time.monotonic()
        # Past the hard limit, whatever was not measured counts as not sent.
        with contextlib.suppress(TimeoutError):
            ws_url = server.url.replace("http://", "ws://") + "/_stcore/stream"
            room = Classroom(ws_url, model, duration, timeout, results, set())
            asyncio.run(asyncio.wait_for(drive(room, sentence_plan), hard_limit))
        elapsed = time.monotonic() - started
        teacher_ms = room.teacher_ms
        stats = {
            "peak_rss_mb": server.peak_rss_mb(),
            "cpu_s": server.cpu_seconds(),
            "tracebacks": server.tracebacks(),
        }
        log_tail = server.log_tail(2000) if stats["tracebacks"] else ""
    report = {
        "config": {
            "sessions": sessions,
            "sentences_per_session": sentences,
            "duration_s": duration,
            "timeout_s": timeout,
            "model": model or ", ".join(sorted({m.model for m in results if m.index >= 0})),
            "models": str(models) if models else os.environ.get("ATTNVIZ_MODELS"),
            "elapsed_s": elapsed,
            "teacher_first_open_ms": teacher_ms,
            "cpu_count": os.cpu_count(),
        },
        "summary": summarize(results, sum(len(s) for s in sentence_plan)),
        "server": {**stats, "log_tail": log_tail},
        "measurements": [asdict(m) for m in sorted(results, key=lambda m: (m.session, m.index))],
    }
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--sentences", type=int, default=4, help="per session (default 4)")
    parser.add_argument("--models", type=Path, help="checkpoint folder (ATTNVIZ_MODELS)")
    parser.add_argument("--model", help="model name (default: the app's default)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per sentence, seconds")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.sentences < 1 or args.duration <= 0 or args.timeout <= 0:
        parser.error("--sessions, --sentences, --duration and --timeout must be positive")
    report = run(
        args.sessions, args.duration, args.sentences, args.models, args.model, args.timeout,
        args.json,
    )  # fmt: skip
    print(format_report(report))
    return 1 if report["summary"]["errors"]["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
