"""Browser fixtures: `intake web` on 127.0.0.1 and Debian's chromium driven by Playwright.

Playwright's own browser download does not work offline, so the system chromium is
launched by path.  Screenshots go to tests/output/screens/ (git-ignored) for a person
to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENS = ROOT / "tests" / "output" / "screens"
CHROMIUM = os.environ.get("INTAKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleServer:
    """`intake web` as a child process (the real CLI, uvicorn and all) on a free port."""

    def __init__(self, config_path: Path, as_of: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        intake = shutil.which("intake", path=str(Path(sys.executable).parent)) or "intake"
        self.log = config_path.parent / "web.log"
        self.proc = subprocess.Popen(
            [intake, "web", "--port", str(self.port), "--as-of", as_of, "--config", str(config_path)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"intake web exited: {self.log.read_text(errors='replace')}")
            try:
                urllib.request.urlopen(self.url + "/login", timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("intake web did not start within 30 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """A headless Debian chromium (skipped with the reason when it or Playwright is missing)."""
    if not Path(CHROMIUM).exists():
        reason = f"no chromium at {CHROMIUM} (scripts/setup --with-services installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # in CI the browser tests must run, never be skipped quietly
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:  # noqa: ANN001 - playwright Page
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
