"""Load-test scenarios: parsed strictly, planned reproducibly, performed on real stations."""

import asyncio
import json
import statistics
from collections import Counter
from pathlib import Path

import pytest

from stations.engine import id_tokens
from stations.engine.driver import Outcome
from stations.engine.scenario import (
    TX_UPDATED_INTERVAL_KEY,
    ScenarioError,
    Step,
    charges,
    load_scenario_file,
    parse_scenario,
    plan,
    scenario_from_dict,
    scenario_to_dict,
    station_plan,
    station_variables,
)
from stations.engine.scenario_driver import ScenarioDriver
from stations.sandbox import Policy, SandboxCsms

from .conftest import Fleet

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.toml"))

MIXED = """
name = "mixed"
seed = 42
duration_s = 600

[boot]
ramp_per_second = 200

[steady]
status_changes_per_hour = 2
fault_s = 30

[transactions]
share = 0.3
sessions = { dist = "lognormal", mean_s = 1800, sigma = 0.5 }
gaps = { dist = "exponential", mean_s = 900 }
id_tokens = { pool = 100, pick = "zipf" }  # RFID cards (ISO14443 UIDs)
meter_interval_s = 60
stop = "token"

[reconnect]
share = 0.2
at_s = 300
jitter_s = 5
down_s = 10
"""


def scenario(**sections):
    return scenario_from_dict({"name": "test", "duration_s": 3600, **sections})


def fleet_of(count, evses=(1,)):
    return {f"CS-{i:04d}": list(evses) for i in range(count)}


# -- parsing ----------------------------------------------------------------------------


def test_the_example_files_parse():
    names = {path.name for path in SCENARIOS}
    assert {"boot-storm.toml", "steady.toml", "transaction-mix.toml",
            "reconnect-storm.toml", "mixed.toml"} <= names
    for path in SCENARIOS:
        parsed = load_scenario_file(path)
        assert parsed.name == path.stem
        assert parsed.boot is not None and parsed.boot.ramp_per_second > 0


def test_the_mixed_example_reads_as_written():
    s = parse_scenario(MIXED)
    assert (s.name, s.seed, s.duration_s) == ("mixed", 42, 600)
    assert s.boot.ramp_per_second == 200
    assert s.transactions.sessions.dist == "lognormal"
    assert s.transactions.sessions.mean_s == 1800
    assert s.transactions.id_tokens.pick == "zipf"
    assert s.reconnect.down_s == 10
    assert station_variables(s) == {TX_UPDATED_INTERVAL_KEY: "60"}
    assert load_scenario_file(Path(SCENARIOS[0]).parent / "mixed.toml") == s


def test_sections_are_optional():
    s = parse_scenario('name = "boot"\nduration_s = 60\n[boot]\nramp_per_second = 10\n')
    assert s.steady is s.transactions is s.reconnect is None
    assert station_variables(s) == {}
    assert plan(s, 1, fleet_of(10)) == []


def test_json_and_toml_give_the_same_scenario(tmp_path):
    toml_form = parse_scenario(MIXED)
    as_dict = scenario_to_dict(toml_form)
    json_text = json.dumps(as_dict)
    assert parse_scenario(json_text, format="json") == toml_form
    (tmp_path / "mixed.json").write_text(json_text)
    assert load_scenario_file(tmp_path / "mixed.json") == toml_form


def test_round_trip_through_a_dict():
    for path in SCENARIOS:
        s = load_scenario_file(path)
        assert scenario_from_dict(scenario_to_dict(s)) == s
    s = parse_scenario(MIXED)
    assert scenario_to_dict(s)["transactions"]["gaps"] == {"dist": "exponential", "mean_s": 900}


VALID = {"name": "x", "duration_s": 60}
TX = {"sessions": {"dist": "fixed", "value_s": 1}, "gaps": {"dist": "fixed", "value_s": 1}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"duration_s": 60}, "name is required"),
        ({"name": "x"}, "duration_s is required"),
        ({**VALID, "duration_s": -5}, "duration_s must be > 0"),
        ({**VALID, "duration_s": "600"}, "duration_s must be a number"),
        ({**VALID, "duration_s": True}, "duration_s must be a number"),
        ({**VALID, "seed": 1.5}, "seed must be an integer"),
        ({**VALID, "durration_s": 60}, "durration_s is not a known key"),
        ({**VALID, "storm": {}}, "storm is not a known key"),
        ({**VALID, "boot": 5}, "boot must be a table"),
        ({**VALID, "boot": {"ramp_per_second": 0}}, "boot.ramp_per_second must be > 0"),
        ({**VALID, "transactions": {**TX, "share": 1.5}},
         "transactions.share must be between 0 and 1"),
        ({**VALID, "transactions": {**TX, "shaer": 0.5}}, "transactions.shaer is not a known"),
        ({**VALID, "transactions": {"gaps": TX["gaps"]}}, "transactions.sessions is required"),
        ({**VALID, "transactions": {**TX, "sessions": {"dist": "pareto", "mean_s": 5}}},
         "transactions.sessions.dist must be one of"),
        ({**VALID, "transactions": {**TX, "sessions": {"mean_s": 5}}},
         "transactions.sessions.dist is required"),
        ({**VALID, "transactions": {**TX, "gaps": {"dist": "lognormal", "mean_s": 5}}},
         "transactions.gaps.sigma is required"),
        ({**VALID, "transactions": {**TX, "gaps": {"dist": "fixed", "mean_s": 5}}},
         "transactions.gaps.mean_s is not a known key"),
        ({**VALID, "transactions": {**TX, "gaps": {"dist": "uniform", "min_s": 9, "max_s": 2}}},
         "transactions.gaps.max_s must be >= min_s"),
        ({**VALID, "transactions": {**TX, "id_tokens": {"pick": "random"}}},
         "transactions.id_tokens.pick must be one of"),
        ({**VALID, "transactions": {**TX, "id_tokens": {"type": "Local", "prefix": "X" * 40}}},
         "transactions.id_tokens.prefix is too long"),
        ({**VALID, "transactions": {**TX, "id_tokens": {"type": "RFID"}}},
         "transactions.id_tokens.type must be one of: Central, eMAID, ISO14443"),
        ({**VALID, "transactions": {**TX, "id_tokens": {"prefix": "LT-"}}},
         "transactions.id_tokens.prefix is for Central, KeyCode, Local idTokens only: "
         "ISO14443 values are generated"),
        ({**VALID, "transactions": {**TX, "id_tokens": {"type": "Central", "prefix": "L T"}}},
         "transactions.id_tokens.prefix makes idTokens such as 'L T100', and Central "
         "idTokens hold only"),
        ({**VALID, "transactions": {**TX, "stop": "walk-away"}}, "transactions.stop must be"),
        ({**VALID, "reconnect": {"at_s": 1}}, "reconnect.down_s is required"),
        ({**VALID, "steady": {"status_changes_per_hour": -1}},
         "steady.status_changes_per_hour must be >= 0"),
        ({**VALID, "transactions": {**TX, "start": "walk-up"}}, "transactions.start must be"),
        ({**VALID, "transactions": {**TX, "measurands": ["Power.Reactive.Import"]}},
         "transactions.measurands: 'Power.Reactive.Import' cannot be sampled"),
        ({**VALID, "transactions": {**TX, "ended_measurands": "SoC"}},
         "transactions.ended_measurands must be a list of measurand names"),
        ({**VALID, "thresholds": {"p95": 10}}, "thresholds: 'p95' is not a known threshold"),
        ({**VALID, "thresholds": {"p95_ms": {"Authorise": 10}}},
         "thresholds: 'Authorise' in 'p95_ms.Authorise' is not an OCPP 2.0.1 action"),
        ({**VALID, "thresholds": {"call_error_rate": 5}},
         "thresholds: the limit of call_error_rate must be between 0 and 1"),
        ({**VALID, "thresholds": {"boot_accepted_share": "all"}},
         "thresholds: the limit of boot_accepted_share must be a number"),
    ],
)
def test_bad_scenarios_name_the_field(data, expected):
    with pytest.raises(ScenarioError, match=expected.replace(".", r"\.")):
        scenario_from_dict(data)
    # The same mistake in JSON text reads the same.
    with pytest.raises(ScenarioError, match=expected.replace(".", r"\.")):
        parse_scenario(json.dumps(data), format="json")


def test_syntax_errors_say_where():
    with pytest.raises(ScenarioError, match="invalid TOML.*line 2"):
        parse_scenario('name = "x"\nduration_s = \n')
    with pytest.raises(ScenarioError, match="invalid JSON.*line 2"):
        parse_scenario('{"name": "x",\n "duration_s": }', format="json")
    with pytest.raises(ScenarioError, match="must be a table"):
        parse_scenario("[1, 2]", format="json")
    with pytest.raises(ScenarioError, match="format"):
        parse_scenario("", format="yaml")


def test_a_bad_file_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nduration_s = 0\n')
    with pytest.raises(ScenarioError, match=r"broken\.toml: duration_s must be > 0"):
        load_scenario_file(path)
    with pytest.raises(ScenarioError, match=r"\.toml or \.json"):
        load_scenario_file(tmp_path / "scenario.yaml")


# -- planning -----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_plan():
    s = parse_scenario(MIXED)
    fleet = fleet_of(200, evses=(1, 2))
    first = plan(s, 7, fleet)
    assert first == plan(s, 7, fleet)
    assert first != plan(s, 8, fleet)
    assert plan(s, None, fleet) == plan(s, 42, fleet), "the scenario's seed by default"
    assert {step.action for step in first} == {
        "start_charging", "stop_charging", "unplug", "set_fault", "clear_fault",
        "disconnect", "connect",
    }
    assert first == sorted(first, key=lambda step: (step.at_s, step.station_id))
    assert all(0 <= step.at_s < s.duration_s for step in first)


def test_two_runs_with_the_same_seed_play_the_same_events_for_their_stations():
    s = parse_scenario(MIXED)

    def run_fleet(run: int) -> dict:
        return {f"LT{run}-{n:05d}": [1, 2] for n in range(1, 101)}

    def events(run: int) -> list:
        prefix = f"LT{run}-"
        steps = plan(s, 42, run_fleet(run), key=lambda sid: sid.removeprefix(prefix))
        return [(step.at_s, step.station_id.removeprefix(prefix), step.action, step.args)
                for step in steps]

    assert events(1) == events(2)
    unkeyed = [(x.at_s, x.station_id[4:], x.action, x.args) for x in plan(s, 42, run_fleet(2))]
    assert unkeyed != events(1), "ids that differ seed different plans without a key"


def test_a_fleet_split_over_shards_does_what_the_whole_fleet_does():
    s = parse_scenario(MIXED)
    fleet = fleet_of(300, evses=(1, 2))
    ids = list(fleet)
    odd = {sid: fleet[sid] for sid in ids[1::2]}
    even = {sid: fleet[sid] for sid in ids[::2]}
    merged = sorted(plan(s, 5, odd) + plan(s, 5, even), key=lambda x: (x.at_s, x.station_id))
    assert merged == plan(s, 5, fleet)
    one = ids[17]
    assert station_plan(s, 5, one, fleet[one]) == [x for x in merged if x.station_id == one]


def test_adding_a_section_leaves_the_others_alone():
    tx = {**TX, "gaps": {"dist": "exponential", "mean_s": 300}}
    sessions_only = plan(scenario(transactions=tx), 3, fleet_of(50))
    with_storm = plan(
        scenario(transactions=tx, reconnect={"at_s": 100, "down_s": 10}), 3, fleet_of(50)
    )
    assert [x for x in with_storm if x.action not in ("disconnect", "connect")] == sessions_only


def test_a_session_starts_stops_and_unplugs_in_turn():
    tx = {
        "sessions": {"dist": "fixed", "value_s": 100},
        "gaps": {"dist": "fixed", "value_s": 50},
        "id_tokens": {"pool": 5, "type": "Local", "prefix": "T", "pick": "sequential"},
        "unplug_after_s": 10,
    }
    steps = station_plan(scenario(transactions=tx), 1, "CS-1", [1])
    assert [(x.at_s, x.action) for x in steps[:4]] == [
        (50, "start_charging"), (150, "stop_charging"), (160, "unplug"), (210, "start_charging")
    ]
    assert steps[0].kwargs == {"evse_id": 1, "id_token": steps[0].kwargs["id_token"],
                               "token_type": "Local"}
    tokens = [x.kwargs["id_token"] for x in steps if x.action == "start_charging"]
    first = int(tokens[0][1:]) - 1
    assert tokens == [f"T{(first + i) % 5 + 1}" for i in range(len(tokens))]
    unplug_only = station_plan(
        scenario(transactions={**tx, "stop": "unplug"}), 1, "CS-1", [1]
    )
    assert [x.action for x in unplug_only[:3]] == ["start_charging", "unplug", "start_charging"]
    assert len(set(steps)) == len(steps), "steps are hashable"


def test_e03_a_driver_may_present_the_card_before_plugging_in():
    tx = {
        "sessions": {"dist": "fixed", "value_s": 100},
        "gaps": {"dist": "fixed", "value_s": 50},
        "start": "token", "plug_in_after_s": 8, "unplug_after_s": 10,
    }
    steps = station_plan(scenario(transactions=tx), 1, "CS-1", [1])
    assert [(x.at_s, x.action) for x in steps[:5]] == [
        (50, "present_token"), (58, "plug_in"), (158, "stop_charging"), (168, "unplug"),
        (218, "present_token"),
    ]
    assert set(steps[0].kwargs) == {"evse_id", "id_token", "token_type"}
    assert steps[1].kwargs == {"evse_id": 1}
    assert scenario(transactions=TX).transactions.start == "plug-in", "E02 stays the default"


def test_a_scenario_chooses_the_measurands_its_stations_sample():
    s = scenario(transactions={**TX, "meter_interval_s": 30,
                               "measurands": ["Energy.Active.Import.Register", "SoC"],
                               "ended_measurands": ["Energy.Active.Import.Register",
                                                    "Power.Active.Import"]})
    assert station_variables(s) == {
        TX_UPDATED_INTERVAL_KEY: "30",
        "SampledDataCtrlr/TxUpdatedMeasurands/Actual": "Energy.Active.Import.Register,SoC",
        "SampledDataCtrlr/TxEndedMeasurands/Actual":
            "Energy.Active.Import.Register,Power.Active.Import",
    }
    assert scenario_from_dict(scenario_to_dict(s)) == s


def test_thresholds_read_as_names_and_limits_in_toml_tables_or_quoted_keys():
    s = parse_scenario('''
name = "gated"
duration_s = 60

[thresholds]
p95_ms = 800
"p99_ms.Authorize" = 1500
call_error_rate = 0.01
boot_accepted_share = 1

[thresholds.timeout_rate]
TransactionEvent = 0
''')
    assert s.thresholds == {"p95_ms": 800.0, "p99_ms.Authorize": 1500.0,
                            "call_error_rate": 0.01, "boot_accepted_share": 1.0,
                            "timeout_rate.TransactionEvent": 0.0}
    assert parse_scenario(json.dumps(scenario_to_dict(s)), format="json") == s
    assert scenario().thresholds == {}


def test_faults_are_cleared_before_the_next_one():
    s = scenario(steady={"status_changes_per_hour": 60, "fault_s": 20})
    steps = station_plan(s, 1, "CS-1", [1, 2])
    assert 20 < len(steps) // 2 < 120
    for raised, cleared in zip(steps[::2], steps[1::2], strict=False):
        assert (raised.action, cleared.action) == ("set_fault", "clear_fault")
        assert raised.kwargs == cleared.kwargs
        assert cleared.at_s - raised.at_s == pytest.approx(20, abs=0.002)


# -- statistics ---------------------------------------------------------------------------


def test_the_share_of_charging_stations():
    rare = {"dist": "fixed", "value_s": 3000}
    s = scenario(transactions={**TX, "gaps": rare, "share": 0.3})
    charging = sum(charges(s, 11, sid) for sid in fleet_of(2000))
    assert 0.25 * 2000 <= charging <= 0.35 * 2000
    starts = {x.station_id for x in plan(s, 11, fleet_of(2000)) if x.action == "start_charging"}
    assert len(starts) == charging
    more = scenario(transactions={**TX, "gaps": rare, "share": 0.6})
    assert starts <= {sid for sid in fleet_of(2000) if charges(more, 11, sid)}


def test_exponential_gaps_have_the_mean_asked_for():
    s = scenario_from_dict({
        "name": "gaps",
        "duration_s": 60 * 960,
        "transactions": {
            "sessions": {"dist": "fixed", "value_s": 60},
            "gaps": {"dist": "exponential", "mean_s": 900},
            "stop": "unplug",
        },
    })
    steps = plan(s, 3, fleet_of(300))
    by_station: dict[str, list[Step]] = {}
    for step in steps:
        by_station.setdefault(step.station_id, []).append(step)
    gaps = []
    for station_steps in by_station.values():
        gaps.append(station_steps[0].at_s)
        for unplug, start in zip(station_steps[1::2], station_steps[2::2], strict=False):
            gaps.append(start.at_s - unplug.at_s)
    assert len(gaps) > 10_000
    assert abs(statistics.fmean(gaps) - 900) < 0.15 * 900


def test_zipf_favours_the_first_tokens():
    tx = {
        "sessions": {"dist": "fixed", "value_s": 60},
        "gaps": {"dist": "fixed", "value_s": 60},
        "id_tokens": {"pool": 100, "type": "Central", "prefix": "LT-", "pick": "zipf"},
    }
    steps = plan(scenario(transactions=tx), 1, fleet_of(200))
    picks = Counter(x.kwargs["id_token"] for x in steps if x.action == "start_charging")
    total = sum(picks.values())
    assert picks["LT-001"] > picks["LT-002"] > picks["LT-010"] > picks["LT-100"]
    assert picks["LT-001"] / total > 0.15, "uniform picking would give 1%"
    uniform = plan(scenario(transactions={**tx, "id_tokens": {"pool": 100, "type": "Central"}}),
                   1, fleet_of(200))
    uniform_picks = Counter(x.kwargs["id_token"] for x in uniform if x.action == "start_charging")
    assert uniform_picks["LT-001"] / total < 0.03


def test_a_pool_holds_distinct_cards_of_its_type_in_the_format_strict_csmss_take():
    pool = scenario(transactions=TX).transactions.id_tokens
    assert pool.type == "ISO14443", "RFID cards by default"
    values = {pool.token(i) for i in range(pool.pool)}
    assert len(values) == pool.pool
    assert all(len(v) == 14 and id_tokens.problem("ISO14443", v) is None for v in values)
    # The scenario library's pools, as the sandbox CSMS (and CitrineOS) would check them.
    library = sorted((Path(__file__).parents[2] / "scenarios").glob("*.toml"))
    assert library
    for path in library:
        tx = load_scenario_file(path).transactions
        if tx is not None:
            pool = tx.id_tokens
            assert all(id_tokens.problem(pool.type, pool.token(i)) is None
                       for i in range(pool.pool)), path.name


def test_session_lengths_follow_the_distribution():
    tx = {
        "sessions": {"dist": "lognormal", "mean_s": 1800, "sigma": 0.5},
        "gaps": {"dist": "fixed", "value_s": 1},
        "unplug_after_s": 0,
    }
    steps = plan(scenario(transactions=tx, duration_s=400_000), 2, fleet_of(20))
    lengths = []
    for sid in fleet_of(20):
        own = [x for x in steps if x.station_id == sid]
        lengths += [stop.at_s - start.at_s for start, stop in zip(own[::3], own[1::3], strict=False)
                    if stop.action == "stop_charging"]
    assert abs(statistics.fmean(lengths) - 1800) < 0.1 * 1800


# -- the driver ---------------------------------------------------------------------------

TINY = {
    "name": "tiny",
    "duration_s": 3,
    "transactions": {
        "share": 1.0,
        "sessions": {"dist": "fixed", "value_s": 1},
        "gaps": {"dist": "fixed", "value_s": 0.5},
        "id_tokens": {"pool": 3, "pick": "sequential"},
        "meter_interval_s": 1,
        "unplug_after_s": 0.1,
    },
    "reconnect": {"share": 1.0, "at_s": 1, "jitter_s": 0.2, "down_s": 0.5},
}
STATION_IDS = ["LT-1", "LT-2", "LT-3"]


async def drive(csms, fleet, seed):
    s = scenario_from_dict(TINY)
    stations = {}
    for sid in STATION_IDS:
        stations[sid] = await fleet.start(station_id=sid, variables=station_variables(s))
    seen = []
    driver = ScenarioDriver(s, seed, stations, on_step=lambda step, out: seen.append(out))
    await asyncio.wait_for(driver.run(), 5)
    for sid in STATION_IDS:
        for event_type in ("Started", "Ended"):
            await csms.wait_for(
                "TransactionEvent", sid, where=lambda e, t=event_type: e["eventType"] == t
            )
        assert csms.connects.count(sid) == 2, "dropped once and came back"
        assert len(csms.messages(sid, "BootNotification")) == 1, "reconnecting is not rebooting"
        interval = stations[sid].device_model.get_int("SampledDataCtrlr", "TxUpdatedInterval")
        assert interval == 1
    assert len(seen) == len(driver.log) == len(driver.steps)
    assert all(isinstance(outcome, Outcome) for outcome in seen)
    assert "Error" not in {status for _, status in driver.log}
    return driver


async def test_the_driver_runs_a_scenario_on_real_stations(csms, fleet):
    other_csms = SandboxCsms(Policy())
    other_csms.url = await other_csms.start()
    other_fleet = Fleet(other_csms)
    try:
        first, second = await asyncio.gather(
            drive(csms, fleet, seed=9), drive(other_csms, other_fleet, seed=9)
        )
    finally:
        await other_fleet.stop()
        await other_csms.stop()
    assert other_csms.violations == []
    steps = sorted(step for step, _ in first.log)
    assert steps == sorted(step for step, _ in second.log) == sorted(first.steps)
    assert {step.action for step in steps} == {
        "start_charging", "stop_charging", "unplug", "disconnect", "connect"
    }
    assert {step.station_id for step in steps} == set(STATION_IDS)
    assert first.steps == plan(scenario_from_dict(TINY), 9, {sid: [1] for sid in STATION_IDS})


async def test_e03_card_first_sessions_and_chosen_measurands_on_real_stations(csms, fleet):
    s = scenario_from_dict({
        "name": "card-first", "duration_s": 3,
        "transactions": {
            "sessions": {"dist": "fixed", "value_s": 1.5},
            "gaps": {"dist": "fixed", "value_s": 0.2},
            "start": "token", "plug_in_after_s": 0.3, "meter_interval_s": 1,
            "measurands": ["Energy.Active.Import.Register", "SoC"],
        },
    })
    station = await fleet.start(station_id="LT-1", variables=station_variables(s))
    driver = ScenarioDriver(s, 1, {"LT-1": station})
    await asyncio.wait_for(driver.run(), 6)
    assert [step.action for step, _ in driver.log][:3] == [
        "present_token", "plug_in", "stop_charging"]
    assert {status for _, status in driver.log} == {"Accepted"}
    authorized = csms.received.index(next(r for r in csms.received if r.action == "Authorize"))
    occupied = next(i for i, r in enumerate(csms.received) if r.action == "StatusNotification"
                    and r.payload["connectorStatus"] == "Occupied")
    assert authorized < occupied, "the card came before the cable"
    events = csms.messages("LT-1", "TransactionEvent")
    assert events[0]["eventType"] == "Started"
    assert events[0]["triggerReason"] == "CablePluggedIn"
    updated = [e for e in events if e["eventType"] == "Updated" and "meterValue" in e]
    assert updated, "meter values during the session"
    for event in updated:
        measurands = {v["measurand"] for mv in event["meterValue"] for v in mv["sampledValue"]}
        assert measurands == {"Energy.Active.Import.Register", "SoC"}


class Flaky:
    """A station whose every action fails."""

    evses = {1: None}

    async def start_charging(self, evse_id, id_token, token_type):
        raise RuntimeError("the card reader is broken")

    async def unplug(self, evse_id):
        raise RuntimeError("the cable is stuck")

    async def stop_charging(self, evse_id):
        return Outcome(True, "Accepted")


async def test_a_failing_action_is_logged_not_raised():
    s = scenario_from_dict({
        "name": "flaky",
        "duration_s": 0.3,
        "transactions": {
            "sessions": {"dist": "fixed", "value_s": 0.1},
            "gaps": {"dist": "fixed", "value_s": 0.05},
            "unplug_after_s": 0.01,
        },
    })
    driver = ScenarioDriver(s, 1, {"CS-1": Flaky()}, on_step=lambda step, out: 1 / 0)
    await asyncio.wait_for(driver.run(), 2)
    statuses = Counter(status for _, status in driver.log)
    assert statuses["Error"] >= 2 and statuses["Accepted"] >= 1
    assert [step for step, _ in driver.log] == driver.steps, "one station: in plan order"


async def test_the_driver_stops_when_cancelled():
    s = scenario(transactions=TX)
    driver = ScenarioDriver(s, 1, {"CS-1": Flaky()})
    task = asyncio.create_task(driver.run())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert driver.steps and driver.log == []
