"""The embedded demo with more stations than its open files allow (`manage.py runfleet`).

A process whose RLIMIT_NOFILE is low (set in the child with resource.setrlimit) runs the
stations that fit, holds the rest saying why, and keeps its web pages and database
working; if descriptors run out all the same, it logs that once per interval.
"""

import http.cookiejar
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .test_runstations import ROOT, free_port, manage

pytestmark = pytest.mark.slow

FD_LIMIT = 256
STATIONS = 150
PASSWORD = "capacity-test-password"


def demo_env(folder: Path, reserve: int = 100) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(FLEET_VAR_DIR=str(folder), FLEET_FD_RESERVE=str(reserve))
    return env


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """One migrated database for the module; each test starts from a copy."""
    folder = tmp_path_factory.mktemp("migrated")
    manage(demo_env(folder), "migrate", "--noinput")
    return folder / "fleet.sqlite3"


def start_demo(tmp_path: Path, migrated: Path, reserve: int):
    csms, web = free_port(), free_port()
    env = demo_env(tmp_path, reserve)
    shutil.copy(migrated, tmp_path / "fleet.sqlite3")
    manage(env, "shell", "-c", f"""
from django.contrib.auth import get_user_model
from stations.models import StationTemplate
get_user_model().objects.create_superuser("op", password={PASSWORD!r})
StationTemplate.objects.create(name="fd", id_pattern="FD-{{n:04d}}",
                               csms_url="ws://127.0.0.1:{csms}").create_stations({STATIONS})
""")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runfleet", "--sandbox", str(csms), "--port", str(web)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=low_limit)
    return process, f"http://127.0.0.1:{web}", tmp_path / "fleet.sqlite3"


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db, timeout=10) as conn:
        return dict(conn.execute(
            "SELECT status, COUNT(*) FROM stations_station GROUP BY status").fetchall())


def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout} s")


def logged_in(url: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "op", "password": PASSWORD,
                                   "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{url}/login/", body, headers={"Referer": f"{url}/login/"})
    answer = opener.open(request, timeout=10)
    assert answer.geturl().rstrip("/") == url, "logged in, sent to the dashboard"
    return opener


def test_stations_past_the_open_files_limit_are_held_and_the_dashboard_answers(tmp_path,
                                                                               migrated):
    # 256 files, 100 kept: 156 for stations, each two (its end and the sandbox CSMS's).
    process, url, db = start_demo(tmp_path, migrated, reserve=100)
    try:
        counts = until(lambda: (c := statuses(db)).get("Available") == 78 and c, 60,
                       "the stations that fit connected")
        assert counts == {"Available": 78, "Held": STATIONS - 78}
        opener = logged_in(url)
        page = json.loads(opener.open(f"{url}/api/stations/?q=FD-0150", timeout=10).read())
        held = page["stations"][0]
        assert held["status"] == "Held"
        assert "open files or ports" in held["error"]
        for _ in range(5):  # the dashboard keeps answering
            assert opener.open(f"{url}/", timeout=10).status == 200
            time.sleep(0.5)
    finally:
        stop(process)
    log = (tmp_path / "demo.log").read_text()
    assert "72 of 150 stations held" in log
    assert "no open file left for its connection" in log
    assert "Traceback" not in log and "Too many open files" not in log


def test_running_out_of_files_all_the_same_is_logged_once_per_interval(tmp_path, migrated):
    # Almost nothing kept back: the sandbox CSMS's accepts find no descriptor.
    process, url, db = start_demo(tmp_path, migrated, reserve=5)
    began = time.monotonic()
    try:
        until(lambda: statuses(db).get("Available", 0) > 0, 60, "some stations connected")
        time.sleep(11)  # past one interval: a second line may come, not a flood
    finally:
        stop(process)
    elapsed = time.monotonic() - began
    log = (tmp_path / "demo.log").read_text()
    lines = [line for line in log.splitlines() if "out of file descriptors" in line]
    assert 1 <= len(lines) <= elapsed / 10 + 1, lines
    assert "Traceback" not in log, log[:2000]
