"""Writes what stations report into the database, in batches.

The engine calls the recorder for every event on the event loop; the recorder only
collects, and a flush (in Django's sync thread) writes the latest of each in a few
queries, so a busy fleet costs the database a handful of statements a second.
Checkpoints take a faster lane, written CHECKPOINT_DELAY_S after the first one due: a
station awaits them before each transaction message it sends (`save_state`), and notes
them without waiting as each message is queued and, while a transaction runs, every few
seconds (`note_state`). So a process killed at any moment loses at most the messages
queued in the last CHECKPOINT_DELAY_S plus the time one write takes, never one the CSMS saw.

In scale-out mode every write first checks, under the shard's ShardRun row lock, that this
copy still runs the shard (`guard`): a copy that was fenced or lost its lease may save its
stations until a new copy starts them, and not after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min
from django.db.models.functions import Mod
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .engine.publisher import FrameIds
from .engine.summary import station_status
from .models import DeviceModelValue, Frame, Station, StationLive, Transaction
from .series import TX_STEP_S, tx_level
from .series_models import TransactionPoint

LOGGER = logging.getLogger(__name__)

CHECKPOINT_DELAY_S = 0.02
LIVE_WRITE_EVERY_S = 10.0
FRAME_FIELDS = ["seq", "at", "direction", "message_type", "unique_id", "action", "payload",
                "latency_ms"]
TX_FIELDS = ["ended_at", "charging_state", "trigger_reason", "stopped_reason", "last_seq_no",
             "energy_wh", "offline", "id_token", "remote_start_id"]


class Recorder:
    def __init__(self, interval: float = 1.0, frame_log: int | None = None,
                 clock: Callable[[], float] = time.time,
                 guard: Callable[[], bool] | None = None):
        self.interval = interval
        # Called inside each write's transaction: False drops the write (another copy
        # of the shard runs its stations now). None: nothing to check (embedded mode).
        self.guard = guard
        self._refused_at = 0.0
        # Frames kept per station in the database's message log; 0 keeps none.
        self.frame_log = settings.FLEET_FRAME_LOG if frame_log is None else frame_log
        self._clock = clock
        self._frames: list[tuple] = []
        self._frame_ids = FrameIds(clock)  # for frames that come without an identity
        self._next_slot: dict[int, int] = {}  # by station pk: where its ring goes on
        # Per station: when its live row was written and a hash of what it showed.
        self._written: dict[str, tuple[float, int]] = {}
        self._variables: dict[tuple[str, str], str] = {}
        self._status: dict[str, dict] = {}
        self._evses: dict[str, dict] = {}
        self._transactions: dict[str, dict] = {}
        self._states: dict[str, dict] = {}
        self._state_waiters: list[asyncio.Future] = []
        self._state_due = asyncio.Event()
        self._online: dict[str, bool] = {}
        # Stations the engine holds for lack of room (capacity): status "Held".
        self._held: set[str] = set()
        self._live: dict[str, dict] = {}
        self._pks: dict[str, int] = {}
        # Transaction charts: the first report in each grid cell, per transaction, until
        # the flush decides which to keep; per running transaction [first cell, last kept].
        self._chart_cells: dict[str, dict[int, tuple]] = {}
        self._chart_ends: dict[str, tuple] = {}
        self._chart_state: dict[str, list[int]] = {}

    # -- collecting (on the event loop) ------------------------------------------------

    def __call__(self, station_id: str, kind: str, data: dict) -> None:
        if kind == "variable":
            self._variables[(station_id, data["key"])] = data["value"]
        elif kind == "connection":
            self._online[station_id] = False
            self._status.setdefault(station_id, {})["online"] = False
            if data.get("error") == "held":
                self._held.add(station_id)
        elif kind == "online":
            self._online[station_id] = True
            self._held.discard(station_id)
            self._status.setdefault(station_id, {}).update(
                online=True, boot_status=data["boot_status"] or ""
            )
        elif kind == "boot" and data["status"] in ("Accepted", "Pending", "Rejected"):
            self._status.setdefault(station_id, {})["boot_status"] = data["status"]
        elif kind == "evse":
            self._live.setdefault(station_id, {})[str(data["evse_id"])] = data
            self._evses[station_id] = self._live[station_id]
            if data.get("transaction_id") and data.get("tx_energy_wh") is not None:
                self._chart_point(station_id, data["transaction_id"], data.get("power_w") or 0.0,
                                  data["tx_energy_wh"])
        elif kind == "transaction":
            self._record_transaction(station_id, data)

    def frame(self, station_id: str, direction: str, message_type_id: int, unique_id: str,
              action: str | None, payload, latency_ms: float | None,
              frame_id: int | None = None) -> None:
        """The engine's frame hook: one OCPP frame for the station's message log.

        `frame_id` is the identity the frame's live copy has (publisher.FrameIds)."""
        if self.frame_log:
            self._frames.append((station_id, frame_id or self._frame_ids(), direction,
                                 message_type_id, unique_id, action, payload, latency_ms))

    def _record_transaction(self, station_id: str, event: dict) -> None:
        info = event["transactionInfo"]
        row = self._transactions.setdefault(info["transactionId"], {"station_id": station_id})
        row["evse_id"] = event["evse_id"]
        row["last_seq_no"] = max(row.get("last_seq_no", 0), event["seqNo"])
        row["charging_state"] = info.get("chargingState", "")
        row["trigger_reason"] = event["triggerReason"]
        row["offline"] = row.get("offline", False) or event.get("offline", False)
        if event.get("tx_energy_wh") is not None:
            row["energy_wh"] = round(event["tx_energy_wh"], 1)
        at = parse_datetime(event["timestamp"])
        row.setdefault("first_at", at)
        if event["eventType"] == "Ended":
            row["ended_at"] = at
            row["stopped_reason"] = info.get("stoppedReason", "")
            if event.get("tx_energy_wh") is not None:
                # The chart ends where the transaction did: no power, its final energy.
                cell = int(self._clock() // TX_STEP_S)
                self._chart_ends[info["transactionId"]] = (
                    station_id, cell, 0.0, round(event["tx_energy_wh"], 1))
        if "idToken" in event:
            row["id_token"] = event["idToken"]["idToken"]
        if "remoteStartId" in info:
            row["remote_start_id"] = info["remoteStartId"]

    def _chart_point(self, station_id: str, tx_id: str, power_w: float, energy_wh: float):
        cell = int(self._clock() // TX_STEP_S)
        self._chart_cells.setdefault(tx_id, {}).setdefault(cell, (station_id, power_w, energy_wh))

    async def save_state(self, station_id: str, state: dict) -> None:
        """Store a station's resumable state; returns once it is in the database."""
        self._states[station_id] = state
        waiter = asyncio.get_running_loop().create_future()
        self._state_waiters.append(waiter)
        self._state_due.set()
        await waiter

    def note_state(self, station_id: str, state: dict) -> None:
        """Store a station's resumable state with the next checkpoint batch (not awaited)."""
        self._states[station_id] = state
        self._state_due.set()

    def _allowed(self) -> bool:
        """Inside a write's transaction: may this copy write for its stations?"""
        if self.guard is None or self.guard():
            return True
        now = time.monotonic()
        if now - self._refused_at > 10:
            self._refused_at = now
            LOGGER.warning("another copy runs this shard now: station updates dropped")
        return False

    # -- writing (in Django's sync thread) ---------------------------------------------

    def _station_pks(self, ids) -> dict[str, int]:
        missing = [i for i in ids if i not in self._pks]
        if missing:
            rows = dict(Station.objects.filter(station_id__in=missing)
                        .values_list("station_id", "pk"))
            # Keyed by the engine's id strings, not the database's copies of them.
            self._pks.update((i, rows[i]) for i in missing if i in rows)
        return {i: self._pks[i] for i in ids if i in self._pks}

    def write_states(self, states: dict[str, dict]) -> None:
        pks = self._station_pks(states)
        with transaction.atomic():
            if not self._allowed():
                return
            StationLive.objects.bulk_create(
                [StationLive(station_id=pks[s], engine_state=state)
                 for s, state in states.items() if s in pks],
                update_conflicts=True, unique_fields=["station"],
                update_fields=["engine_state"],
            )

    def _due_evses(self, now: float) -> dict[str, dict]:
        """Stations whose EVSE state changed in a way a person sees, or is 10 s old.

        Charging stations report kW/kWh every few seconds; writing each of those would
        cost the database more than the whole simulation.
        """
        pending, self._evses = self._evses, {}
        due = {}
        for station_id, evses in pending.items():
            signature = hash(tuple(
                (e.get("charging_state"), e.get("transaction_id"),
                 tuple(sorted(e.get("connectors", {}).items())))
                for _, e in sorted(evses.items())))
            written_at, written = self._written.get(station_id, (0.0, None))
            if signature != written or now - written_at >= LIVE_WRITE_EVERY_S:
                self._written[station_id] = (now, signature)
                due[station_id] = evses
            else:
                self._evses.setdefault(station_id, evses)
        return due

    def flush(self) -> None:
        variables, self._variables = self._variables, {}
        status, self._status = self._status, {}
        evses = self._due_evses(time.monotonic())
        txs, self._transactions = self._transactions, {}
        frames, self._frames = self._frames, []
        cells, self._chart_cells = self._chart_cells, {}
        ends, self._chart_ends = self._chart_ends, {}
        ids = {s for s, _ in variables} | set(status) | set(evses) | {f[0] for f in frames}
        ids |= {row["station_id"] for row in txs.values()}
        ids |= {p[0] for points in cells.values() for p in points.values()}
        ids |= {end[0] for end in ends.values()}
        if not ids:
            return
        now = timezone.now()
        with transaction.atomic():
            if not self._allowed():
                return
            pks = self._station_pks(ids)
            DeviceModelValue.objects.bulk_create(
                [DeviceModelValue(station_id=pks[s], key=k, value=v)
                 for (s, k), v in variables.items() if s in pks],
                update_conflicts=True, unique_fields=["station", "key"],
                update_fields=["value", "updated_at"],
            )
            self._write_live(pks, evses)
            # One UPDATE per distinct set of values, not one per station.
            groups: dict[tuple, list[int]] = {}
            for station_id in set(status) | set(evses):
                if station_id not in pks:
                    continue
                fields = dict(status.get(station_id, {}))
                online = self._online.get(station_id, False)
                fields["status"] = ("Held" if station_id in self._held else
                                    station_status(online, self._live.get(station_id, {})))
                if online:
                    fields["last_seen"] = now
                groups.setdefault(tuple(sorted(fields.items())), []).append(pks[station_id])
            for fields, station_pks in groups.items():
                Station.objects.filter(pk__in=station_pks).update(**dict(fields))
            self._write_transactions(pks, txs, evses)
            if cells or ends:
                self._write_charts(pks, cells, ends)
            if frames:
                self._write_frames(pks, frames)

    def _write_live(self, pks, evses: dict[str, dict]) -> None:
        StationLive.objects.bulk_create(
            [StationLive(station_id=pks[s], evses=e) for s, e in evses.items() if s in pks],
            update_conflicts=True, unique_fields=["station"],
            update_fields=["evses", "updated_at"],
        )

    def _write_frames(self, pks, frames: list[tuple]) -> None:
        """Upsert each frame into the next slot of its station's ring of `frame_log`."""
        unknown = {pks[f[0]] for f in frames if f[0] in pks} - self._next_slot.keys()
        if unknown:
            # Once per station and process: a restarted shard goes on after its newest frame
            # (two plain queries: a correlated subquery per row costs a ring per row).
            newest = dict(Frame.objects.filter(station_id__in=unknown).values("station_id")
                          .annotate(last=Max("seq")).values_list("station_id", "last"))
            self._next_slot.update(
                (pk, slot + 1) for pk, seq, slot in
                Frame.objects.filter(station_id__in=list(newest), seq__in=newest.values())
                .values_list("station_id", "seq", "slot") if newest[pk] == seq)
            self._next_slot.update((pk, 0) for pk in unknown - self._next_slot.keys())
        rows: dict[tuple[int, int], Frame] = {}
        for station_id, frame_id, direction, type_id, unique_id, action, payload, latency \
                in frames:
            pk = pks.get(station_id)
            if pk is None:
                continue
            slot = self._next_slot[pk] % self.frame_log
            self._next_slot[pk] = slot + 1
            # More frames than slots in one batch: the newest take the slots (one row each).
            rows[pk, slot] = Frame(
                station_id=pk, slot=slot, seq=frame_id, at=frame_id / 1e6,
                direction=direction, message_type=type_id, unique_id=unique_id,
                action=action or "", payload=payload, latency_ms=latency)
        try:
            # A savepoint: a frame the database refuses costs the log, not the states.
            with transaction.atomic():
                Frame.objects.bulk_create(
                    rows.values(), update_conflicts=True, unique_fields=["station", "slot"],
                    update_fields=FRAME_FIELDS, batch_size=2000)
        except Exception:
            LOGGER.exception("could not write %d frames to the message log", len(rows))

    def _write_charts(self, pks, cells: dict[str, dict[int, tuple]], ends: dict) -> None:
        """Keep the points that fall on each transaction's grid; thin out grown ones."""
        unknown = [tx for tx in cells if tx not in self._chart_state]
        if unknown:
            # A restarted shard goes on with the grid its transactions already have.
            self._chart_state.update(
                (tx, [first, last]) for tx, first, last in
                TransactionPoint.objects.filter(transaction_id__in=unknown)
                .values("transaction_id").annotate(first=Min("cell"), last=Max("cell"))
                .values_list("transaction_id", "first", "last"))
        points, thin = [], {}
        for tx_id, by_cell in cells.items():
            for cell in sorted(by_cell):
                station_id, power_w, energy_wh = by_cell[cell]
                state = self._chart_state.setdefault(tx_id, [cell, cell - 1])
                first, last = state
                level = tx_level(first, cell)
                if cell <= last or (cell - first) % (1 << level):
                    continue
                if last >= first and level > tx_level(first, last):
                    thin[tx_id] = (first, level)
                state[1] = cell
                if station_id in pks:
                    points.append(TransactionPoint(
                        station_id=pks[station_id], transaction_id=tx_id, cell=cell,
                        power_w=power_w, energy_wh=energy_wh))
        # A point of the same cell written before a restart stays as it was.
        TransactionPoint.objects.bulk_create(points, ignore_conflicts=True)
        for tx_id, (first, level) in thin.items():
            TransactionPoint.objects.filter(transaction_id=tx_id).annotate(
                off_grid=Mod(F("cell") - first, 1 << level)).exclude(off_grid=0).delete()
        ended = [TransactionPoint(station_id=pks[station_id], transaction_id=tx_id, cell=cell,
                                  power_w=power_w, energy_wh=energy_wh)
                 for tx_id, (station_id, cell, power_w, energy_wh) in ends.items()
                 if station_id in pks]
        TransactionPoint.objects.bulk_create(
            ended, update_conflicts=True, unique_fields=["transaction_id", "cell"],
            update_fields=["power_w", "energy_wh"])
        for tx_id in ends:
            self._chart_state.pop(tx_id, None)

    def _write_transactions(self, pks, txs, evses) -> None:
        """Upsert the transactions events touched; refresh the kWh of the ones still charging.

        One INSERT ... ON CONFLICT per distinct set of fields: a per-row UPDATE of every
        field (bulk_update) cost more CPU than all the stations of a shard together.
        """
        energy = {
            e["transaction_id"]: e.get("tx_energy_wh") or 0
            for station in evses.values() for e in station.values() if e.get("transaction_id")
        }
        groups: dict[tuple[str, ...], list[Transaction]] = {}
        for tx_id, row in txs.items():
            if row["station_id"] not in pks:
                continue
            values = {name: row[name] for name in TX_FIELDS if name in row}
            if not values.get("offline"):
                values.pop("offline", None)  # once sent offline, always marked so
            wh = values.get("energy_wh", energy.get(tx_id))
            if wh is not None:
                values["energy_wh"] = wh
            energy.pop(tx_id, None)
            groups.setdefault(tuple(sorted(values)), []).append(Transaction(
                station_id=pks[row["station_id"]], transaction_id=tx_id, evse_id=row["evse_id"],
                started_at=row["first_at"] or timezone.now(), **values))
        for fields, rows in groups.items():
            Transaction.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["transaction_id"],
                update_fields=list(fields))
        if energy:
            known = Transaction.objects.filter(transaction_id__in=list(energy))
            Transaction.objects.bulk_update(
                [Transaction(pk=pk, energy_wh=energy[tx_id])
                 for tx_id, pk in known.values_list("transaction_id", "pk")],
                ["energy_wh"])

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

