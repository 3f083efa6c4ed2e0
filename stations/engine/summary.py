"""One word per station and fleet-wide totals, as the dashboard shows them."""

from __future__ import annotations

from collections.abc import Iterable

STATUS_WORDS = ("Offline", "Faulted", "Charging", "Occupied", "Unavailable", "Available")


def station_status(online: bool, evses: dict) -> str:
    """The most telling state of a station's EVSEs."""
    if not online:
        return "Offline"
    connector_states = [s for e in evses.values() for s in e.get("connectors", {}).values()]
    if "Faulted" in connector_states:
        return "Faulted"
    if any(e.get("charging_state") == "Charging" for e in evses.values()):
        return "Charging"
    if "Occupied" in connector_states:
        return "Occupied"
    if connector_states and all(s == "Unavailable" for s in connector_states):
        return "Unavailable"
    return "Available"


# Connector totals are keyed by the OCPP ConnectorStatus they count, in lower case.
CONNECTOR_STATUSES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
_CONNECTOR_KEYS = {status: status.lower() for status in CONNECTOR_STATUSES}


def empty_totals() -> dict:
    """The fleet's tiles, each counting what the station table shows in one column:
    stations (connected = online and booted), connectors by their status (the Connector
    column, whether the station is connected or not), EVSEs charging (the State column)
    and running transactions."""
    return {"stations": 0, "connected": 0, "offline": 0,
            "available": 0, "occupied": 0, "reserved": 0, "unavailable": 0, "faulted": 0,
            "charging": 0, "active_transactions": 0,
            "power_kw": 0.0, "energy_kwh": 0.0, "msgs_per_s": 0.0}


def fleet_totals(stations: Iterable[tuple[bool, dict]]) -> dict:
    """Totals over (online, evses by id) of each station."""
    totals = empty_totals()
    for online, evses in stations:
        totals["stations"] += 1
        totals["connected" if online else "offline"] += 1
        for evse in evses.values():
            for status in evse.get("connectors", {}).values():
                key = _CONNECTOR_KEYS.get(status)
                if key is not None:
                    totals[key] += 1
            if evse.get("charging_state") == "Charging":
                totals["charging"] += 1
            if evse.get("transaction_id"):
                totals["active_transactions"] += 1
            totals["power_kw"] += (evse.get("power_w") or 0) / 1000
            totals["energy_kwh"] += (evse.get("energy_wh") or 0) / 1000
    totals["power_kw"] = round(totals["power_kw"], 1)
    totals["energy_kwh"] = round(totals["energy_kwh"], 1)
    return totals


def add_totals(parts: Iterable[dict]) -> dict:
    """Fleet totals from per-shard totals."""
    totals = empty_totals()
    for part in parts:
        for key, value in part.items():
            if key in totals:
                totals[key] += value
    totals["power_kw"] = round(totals["power_kw"], 1)
    totals["energy_kwh"] = round(totals["energy_kwh"], 1)
    totals["msgs_per_s"] = round(totals["msgs_per_s"], 1)
    return totals
