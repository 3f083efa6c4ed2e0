"""A station as the dashboard shows it, from the engine's live view or the database."""

from __future__ import annotations

from .engine.summary import station_status

HELD = "Held: the engine process has no room for it (open files or ports); its log says which"


def _evse_list(evses: dict) -> list[dict]:
    return [evses[key] for key in sorted(evses, key=int)]


def row_from_view(view: dict, shard=None) -> dict:
    """From a Publisher view (engine side, live)."""
    evses = view.get("evses", {})
    held = (view.get("error") or "").startswith("Held")  # capacity: not started here
    return {
        "station_id": view["station_id"],
        "status": "Held" if held else station_status(view.get("online", False), evses),
        "online": view.get("online", False),
        "boot_status": view.get("boot_status"),
        "error": view.get("error"),
        "shard": shard,
        "evses": _evse_list(evses),
    }


def row_from_db(station, live_evses: dict | None) -> dict:
    """From a Station row and its StationLive.evses (written once a second)."""
    evses = dict(live_evses or {})
    for evse in station.evses.all():
        evses.setdefault(str(evse.evse_id), {
            "evse_id": evse.evse_id,
            "connectors": {str(c.connector_id): "Unavailable" for c in evse.connectors.all()},
            "charging_state": "Idle", "power_w": 0.0, "energy_wh": 0.0, "soc": None,
            "id_token": None, "transaction_id": None, "tx_energy_wh": None,
        })
    for snapshot in evses.values():
        snapshot["connectors"] = {str(c): s for c, s in snapshot.get("connectors", {}).items()}
    return {
        "station_id": station.station_id,
        "status": station.status if station.online or station.status == "Held" else "Offline",
        "online": station.online,
        "boot_status": station.boot_status or None,
        "error": HELD if station.status == "Held" else None,
        "shard": station.shard,
        "evses": _evse_list(evses),
    }
