"""`manage.py runstations` runs the database's stations against a CSMS, no browser needed."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True, timeout=60, **kwargs,
    )


def test_it_runs_stations_from_the_database_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "FLEET_VAR_DIR": str(tmp_path)}
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", f"""
from stations.models import Station, Evse, Connector
for n in (1, 2):
    s = Station.objects.create(station_id=f"RUN-{{n}}", csms_url="ws://127.0.0.1:{port}")
    e = Evse.objects.create(station=s, evse_id=1, max_power_kw=11)
    Connector.objects.create(evse=e, connector_id=1, connector_type="cType2")
Station.objects.create(station_id="OFF-1", csms_url="ws://127.0.0.1:{port}", enabled=False)
""")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runstations", "--sandbox", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            booted = [x for x in lines if "BootNotification Accepted" in x]
            if len(booted) == 2:
                break
        assert any("RUN-1: BootNotification Accepted" in x for x in lines), "".join(lines)
        assert any("RUN-2: BootNotification Accepted" in x for x in lines), "".join(lines)
        time.sleep(1.5)  # one recorder flush
        online = manage(env, "shell", "-c", """
from stations.models import Station
print("ONLINE", sorted(Station.objects.filter(online=True).values_list("station_id", flat=True)))
""").stdout
        assert "ONLINE ['RUN-1', 'RUN-2']" in online
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Stopped." in output
    assert not any("OFF-1" in x for x in lines + [output]), "disabled stations stay off"
    after = manage(env, "shell", "-c", """
from stations.models import Station
print("ONLINE", Station.objects.filter(online=True).count())
""").stdout
    assert "ONLINE 0" in after


def test_every_command_on_a_fresh_database_says_to_migrate_first(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
           "FLEET_VAR_DIR": str(tmp_path)}
    commands = [("runstations",), ("runfleet", "--no-engine"), ("setupdemo",),
                ("createapitoken", "demo")]
    for command in commands:
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, command
        assert "manage.py migrate" in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
