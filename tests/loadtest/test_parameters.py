"""Bad load-test parameters get one clear error each, before anything starts; scenarios come
from the library or the database only, and a path reveals nothing about the server's files."""

import socket

import pytest
from django.core.management import CommandError, call_command

from stations import loadtest
from stations.models import LoadTestRun, Scenario

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def listening():
    """Something that accepts TCP connections, for the CSMS reachability check."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"ws://127.0.0.1:{server.getsockname()[1]}"


def refused(url, *args) -> CommandError:
    base = {"--csms-url": url, "--stations": "5", "--scenario": "steady"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [f"{key}={value}" for key, value in (base | given).items()]
    with pytest.raises(CommandError) as caught:
        call_command("loadtest", *argv, "--quiet")
    assert caught.value.returncode == 2
    assert LoadTestRun.objects.count() == 0, "nothing was created"
    return caught.value


@pytest.mark.parametrize(("args", "message"), [
    (("--stations", "0"), "the number of stations must be at least 1"),
    (("--stations", "100001"), "at most 100,000 stations per run"),
    (("--ramp", "nan"), "the ramp-up rate (stations per second) must be a positive number "
                        "(got nan)"),
    (("--ramp", "-1"), "the ramp-up rate (stations per second) must be a positive number"),
    (("--duration", "nan"), "the duration (seconds) must be a positive number (got nan)"),
    (("--duration", "inf"), "the duration (seconds) must be a positive number (got inf)"),
    (("--duration", "0"), "the duration (seconds) must be a positive number (got 0)"),
    (("--duration", "1e9"), "the duration (seconds) must be at most 604800"),
    (("--response-timeout", "-inf"), "the response timeout (seconds) must be a positive"),
    (("--threshold", "p95=3"), "--threshold: 'p95' is not a known threshold; known "
                               "thresholds: p50_ms"),
    (("--threshold", "p95_ms"), "--threshold: a threshold is NAME=VALUE"),
    (("--threshold", "p95_ms=nan"), "--threshold: the limit of p95_ms must be a number"),
    (("--template", "nope"), "no station template named 'nope'"),
    (("--workers", "-1"), "--workers must be 0"),
    (("--csms-url", "http://127.0.0.1:1"), "'http://127.0.0.1:1' is not a ws:// or wss:// URL"),
    (("--csms-url", "ws://127.0.0.1:1"), "cannot reach the CSMS at 127.0.0.1:1"),
    (("--csms-url", "ws://127.0.0.1:99999"), "is not a ws:// or wss:// URL"),
    (("--scenario", "nosuch"), "no scenario named 'nosuch': scenarios come from the library"),
])
def test_bad_parameters_get_one_clear_error_each(listening, args, message):
    assert message in str(refused(listening, *args))


def test_a_bad_threshold_in_the_database_scenario_is_refused_at_save():
    from django.core.exceptions import ValidationError

    row = Scenario(name="bad", definition='name = "bad"\nduration_s = 5\n'
                   '[thresholds]\np95 = 3\n')
    with pytest.raises(ValidationError, match="'p95' is not a known threshold"):
        row.full_clean()


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/no-such-file.toml",
                                  "../pyproject.toml", "../no-such.toml",
                                  "scenarios/mixed.toml", str(loadtest.library()["mixed.toml"])])
def test_a_path_is_refused_and_reveals_nothing_about_the_file(listening, path):
    message = str(refused(listening, "--scenario", path))
    assert message.replace(repr(path), "X") == str(refused(listening, "--scenario",
                                                           "nosuch")).replace("'nosuch'", "X")
    assert "root:" not in message


def test_scenarios_are_taken_by_name_from_the_library_and_the_database():
    assert loadtest.resolve_scenario("mixed").name == "mixed"
    assert loadtest.resolve_scenario("mixed.toml").text.startswith("# All of it")
    Scenario.objects.create(name="mixed", definition='name = "mine"\nduration_s = 5\n')
    assert loadtest.resolve_scenario("mixed").scenario.name == "mine", "the admin's first"
    assert loadtest.resolve_scenario("mixed.toml").name == "mixed", "a file name: the file"
    choices = dict(loadtest.scenario_choices())
    assert ("steady.toml", "steady.toml") in choices["Library (scenarios/)"]
    assert ("mixed", "mixed") in choices["Database (admin)"]


def test_create_run_checks_its_thresholds_and_adds_them_to_the_scenarios():
    source = loadtest.resolve_scenario("steady")
    source.scenario = type(source.scenario)(**{**source.scenario.__dict__,
                                               "thresholds": {"p95_ms": 800.0,
                                                              "timeout_rate": 0.0}})
    run = loadtest.create_run(csms_url="ws://127.0.0.1:9", stations=3, ramp_per_second=10,
                              duration_s=5, source=source, seed=1,
                              thresholds={"p95_ms": 500, "p99_ms.Authorize": 900})
    run.refresh_from_db()
    assert run.thresholds == {"p95_ms": 500.0, "timeout_rate": 0.0, "p99_ms.Authorize": 900.0}
    with pytest.raises(loadtest.LoadTestError, match="known thresholds: p50_ms") as caught:
        loadtest.create_run(csms_url="ws://127.0.0.1:9", stations=3, ramp_per_second=10,
                            duration_s=5, source=source, seed=1, thresholds={"p95": 1})
    assert caught.value.field == "thresholds"
