"""Writes what stations report into the database, in batches.

The engine calls the recorder for every event on the event loop; the recorder only
collects, and a flush (in Django's sync thread) writes the latest of each in a few
queries, so a busy fleet costs the database a handful of statements a second.
Checkpoints (`save_state`) take a faster lane: a station awaits them before each
transaction message, so they are written within a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .engine.summary import station_status
from .models import DeviceModelValue, Station, StationLive, Transaction

LOGGER = logging.getLogger(__name__)

CHECKPOINT_DELAY_S = 0.02
TX_FIELDS = ["ended_at", "charging_state", "trigger_reason", "stopped_reason", "last_seq_no",
             "energy_wh", "offline", "id_token", "remote_start_id"]


class Recorder:
    def __init__(self, interval: float = 1.0, take_log: Callable[[], dict] | None = None):
        self.interval = interval
        # Frames since the last flush, per station (Publisher.take_log); None: not kept.
        self.take_log = take_log
        self._variables: dict[tuple[str, str], str] = {}
        self._status: dict[str, dict] = {}
        self._evses: dict[str, dict] = {}
        self._transactions: dict[str, dict] = {}
        self._states: dict[str, dict] = {}
        self._state_waiters: list[asyncio.Future] = []
        self._state_due = asyncio.Event()
        self._online: dict[str, bool] = {}
        self._live: dict[str, dict] = {}
        self._pks: dict[str, int] = {}

    # -- collecting (on the event loop) ------------------------------------------------

    def __call__(self, station_id: str, kind: str, data: dict) -> None:
        if kind == "variable":
            self._variables[(station_id, data["key"])] = data["value"]
        elif kind == "connection":
            self._online[station_id] = False
            self._status.setdefault(station_id, {})["online"] = False
        elif kind == "online":
            self._online[station_id] = True
            self._status.setdefault(station_id, {}).update(
                online=True, boot_status=data["boot_status"] or ""
            )
        elif kind == "boot" and data["status"] in ("Accepted", "Pending", "Rejected"):
            self._status.setdefault(station_id, {})["boot_status"] = data["status"]
        elif kind == "evse":
            self._live.setdefault(station_id, {})[str(data["evse_id"])] = data
            self._evses[station_id] = self._live[station_id]
        elif kind == "transaction":
            self._record_transaction(station_id, data)

    def _record_transaction(self, station_id: str, event: dict) -> None:
        info = event["transactionInfo"]
        row = self._transactions.setdefault(info["transactionId"], {"station_id": station_id})
        row["evse_id"] = event["evse_id"]
        row["last_seq_no"] = max(row.get("last_seq_no", 0), event["seqNo"])
        row["charging_state"] = info.get("chargingState", "")
        row["trigger_reason"] = event["triggerReason"]
        row["offline"] = row.get("offline", False) or event.get("offline", False)
        at = parse_datetime(event["timestamp"])
        row.setdefault("first_at", at)
        if event["eventType"] == "Ended":
            row["ended_at"] = at
            row["stopped_reason"] = info.get("stoppedReason", "")
        if "idToken" in event:
            row["id_token"] = event["idToken"]["idToken"]
        if "remoteStartId" in info:
            row["remote_start_id"] = info["remoteStartId"]

    async def save_state(self, station_id: str, state: dict) -> None:
        """Store a station's resumable state; returns once it is in the database."""
        self._states[station_id] = state
        waiter = asyncio.get_running_loop().create_future()
        self._state_waiters.append(waiter)
        self._state_due.set()
        await waiter

    # -- writing (in Django's sync thread) ---------------------------------------------

    def _station_pks(self, ids) -> dict[str, int]:
        missing = [i for i in ids if i not in self._pks]
        if missing:
            rows = Station.objects.filter(station_id__in=missing).values_list("station_id", "pk")
            self._pks.update(rows)
        return {i: self._pks[i] for i in ids if i in self._pks}

    def write_states(self, states: dict[str, dict]) -> None:
        pks = self._station_pks(states)
        StationLive.objects.bulk_create(
            [StationLive(station_id=pks[s], engine_state=state) for s, state in states.items()
             if s in pks],
            update_conflicts=True, unique_fields=["station"], update_fields=["engine_state"],
        )

    def flush(self) -> None:
        variables, self._variables = self._variables, {}
        status, self._status = self._status, {}
        evses, self._evses = self._evses, {}
        txs, self._transactions = self._transactions, {}
        frames = self.take_log() if self.take_log else {}
        ids = {s for s, _ in variables} | set(status) | set(evses) | set(frames)
        ids |= {row["station_id"] for row in txs.values()}
        if not ids:
            return
        now = timezone.now()
        with transaction.atomic():
            pks = self._station_pks(ids)
            DeviceModelValue.objects.bulk_create(
                [DeviceModelValue(station_id=pks[s], key=k, value=v)
                 for (s, k), v in variables.items() if s in pks],
                update_conflicts=True, unique_fields=["station", "key"],
                update_fields=["value", "updated_at"],
            )
            self._write_live(pks, evses, frames)
            for station_id in set(status) | set(evses):
                if station_id not in pks:
                    continue
                fields = dict(status.get(station_id, {}))
                online = self._online.get(station_id, False)
                fields["status"] = station_status(online, self._live.get(station_id, {}))
                if online:
                    fields["last_seen"] = now
                Station.objects.filter(pk=pks[station_id]).update(**fields)
            self._write_transactions(pks, txs, evses)

    def _write_live(self, pks, evses, frames) -> None:
        ids = [s for s in set(evses) | set(frames) if s in pks]
        if not ids:
            return
        existing = {
            live.station_id: live
            for live in StationLive.objects.filter(station_id__in=[pks[s] for s in ids])
        }
        rows = []
        for station_id in ids:
            live = existing.get(pks[station_id]) or StationLive(station_id=pks[station_id])
            if station_id in evses:
                live.evses = evses[station_id]
            if frames.get(station_id):
                live.frames = (live.frames + frames[station_id])[-200:]
            rows.append(live)
        StationLive.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["station"],
            update_fields=["evses", "frames", "updated_at"],
        )

    def _write_transactions(self, pks, txs, evses) -> None:
        energy = {
            e["transaction_id"]: e.get("tx_energy_wh") or 0
            for station in evses.values() for e in station.values() if e.get("transaction_id")
        }
        known = {
            t.transaction_id: t
            for t in Transaction.objects.filter(transaction_id__in=list(txs) + list(energy))
        }
        new, changed = [], []
        for tx_id, row in txs.items():
            if row["station_id"] not in pks:
                continue
            tx = known.get(tx_id) or Transaction(
                station_id=pks[row["station_id"]], transaction_id=tx_id,
                evse_id=row["evse_id"], started_at=row["first_at"] or timezone.now(),
            )
            for name in TX_FIELDS:
                if name in row:
                    setattr(tx, name, row[name])
            tx.energy_wh = energy.pop(tx_id, tx.energy_wh)
            (changed if tx.pk else new).append(tx)
        for tx_id, wh in energy.items():
            if tx_id in known and known[tx_id] not in changed:
                known[tx_id].energy_wh = wh
                changed.append(known[tx_id])
        Transaction.objects.bulk_create(new, ignore_conflicts=True)
        Transaction.objects.bulk_update(changed, TX_FIELDS)

    # -- loops -------------------------------------------------------------------------

    async def run(self) -> None:
        """Flush every `interval` seconds and checkpoints as they come, until cancelled."""
        checkpoints = asyncio.ensure_future(self._checkpoint_loop())
        try:
            while True:
                await asyncio.sleep(self.interval)
                await self._flush_safely()
        finally:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
            await self._flush_checkpoints()
            await self._flush_safely()

    async def _flush_safely(self) -> None:
        try:
            await sync_to_async(self.flush)()
        except Exception:
            LOGGER.exception("could not write station updates")

    async def _checkpoint_loop(self) -> None:
        while True:
            await self._state_due.wait()
            await asyncio.sleep(CHECKPOINT_DELAY_S)
            await self._flush_checkpoints()

    async def _flush_checkpoints(self) -> None:
        self._state_due.clear()
        states, self._states = self._states, {}
        waiters, self._state_waiters = self._state_waiters, []
        if not states:
            return
        try:
            await sync_to_async(self.write_states)(states)
        except Exception:
            # Charging goes on; the state is saved again with the next message.
            LOGGER.exception("could not save station state")
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

