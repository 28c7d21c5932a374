"""`attnviz app` is the server process: stopping it by its PID stops the server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def port_is_free(port: int) -> bool:
    """Nothing listens on the port (closed connections may linger in TIME_WAIT; a new
    server binds over those)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_served(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the app did not serve {url} (exit code {process.poll()})")


@pytest.mark.slow
def test_sigterm_to_attnviz_app_stops_the_server(tmp_path):
    port = free_port()
    script = Path(sys.executable).parent / "attnviz"  # the console script a user runs
    env = {
        **os.environ,
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
        "ATTNVIZ_MODELS": str(tmp_path),  # the health check does not open a model
    }
    # A session of its own, so that a failure below can stop anything left behind.
    process = subprocess.Popen(
        [str(script), "app", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_served(f"http://127.0.0.1:{port}", process)
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        deadline = time.monotonic() + 5
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_is_free(port), "the Streamlit server still holds the port"
    finally:
        # The whole session: a server left running by a failed stop must not outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
