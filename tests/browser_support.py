"""The console's browser tests: Debian's chromium driven headless by Selenium (chromium-driver), and
`dialer web`'s app served by uvicorn on a loopback port in a thread of its own.

Chromium as root on this closed network needs --no-sandbox and the background-networking flags
off (its own connections out are refused otherwise), and a new empty profile each time.
Screenshots go to the session's pytest tmp dir (``screenshots/``) and, when DIALER_SCREENSHOTS
names a directory, there too (docs/ for the README).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from agi.web.app import WebOptions, create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WINDOW = (1366, 768)  # the laptop screen the console is made for
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """`dialer web`'s app on 127.0.0.1:<port>, in a thread with its own event loop and engine."""

    def __init__(self, db_url: str, *, poll_s: float = 0.3) -> None:
        self.db_url = db_url
        self.port = free_port()
        self.poll_s = poll_s
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "WebServer":
        options = WebOptions(webhooks=False, rate=0, session_secret="browser-tests", console_poll_s=self.poll_s)

        def serve() -> None:
            app = create_app(db_url=self.db_url, options=options)
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                    timeout_graceful_shutdown=1, lifespan="on")
            self.server = uvicorn.Server(config)
            asyncio.run(self.server.serve())

        self.thread = threading.Thread(target=serve, name="dialer-web", daemon=True)
        self.thread.start()
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self.server is not None and self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("dialer web did not start in 20 s")

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)


def browser():
    """A headless Chromium (Selenium); raises with what to install when the machine has none."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        raise RuntimeError("the console's browser tests need Debian's chromium and chromium-driver: "
                           "scripts/test installs them (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_window_size(*WINDOW)
    driver.profile_dir = profile
    return driver


def close(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)


class Shots:
    """Screenshots of a test, named in order: <dir>/<name>.png (and a copy in $DIALER_SCREENSHOTS)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, driver, name: str) -> Path:
        path = self.dir / f"{name}.png"
        driver.save_screenshot(str(path))
        self.taken.append(path)
        extra = os.environ.get("DIALER_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(extra) / path.name)
        return path
