"""The one-command demo, for real: `runfleet --sandbox` in a subprocess, driven by Chromium."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    def __init__(self, tmp: Path):
        self.web_port, self.csms_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = {**os.environ, "FLEET_VAR_DIR": str(tmp), "DJANGO_DEBUG": "0",
                    "DATABASE_URL": f"sqlite:///{tmp / 'demo.sqlite3'}"}
        self.env.pop("REDIS_URL", None)
        self.log = open(tmp / "runfleet.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = None
        self.password = None
        self.tmp = tmp

    def manage(self, *args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              check=True, capture_output=True, text=True, timeout=120).stdout

    def start(self):
        self.manage("migrate", "--noinput")
        out = self.manage("setupdemo", "--csms-url", f"ws://127.0.0.1:{self.csms_port}")
        self.password = out.rsplit("password ", 1)[1].strip().strip("'")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runfleet", "--port", str(self.web_port),
             "--sandbox", str(self.csms_port)],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.web_port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError((self.tmp / "runfleet.log").read_text())

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    demo = Demo(tmp_path_factory.mktemp("demo"))
    demo.start()
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


def login(page, demo):
    """Log in as the demo user and wait for the fleet page's live updates."""
    page.set_default_timeout(15000)
    page.goto(demo.url + "/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", demo.password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(demo.url + "/")
    page.wait_for_function("window.websocketConnected === true")


@pytest.fixture
def page(browser, demo):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    login(page, demo)
    yield page
    context.close()
