"""Writes what stations report into the database, in batches.

The engine calls the recorder for every event on the event loop; the recorder only
collects, and `flush()` (run in a worker thread) writes the latest of each in a few
queries, so a busy fleet costs the database a handful of statements a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from .models import DeviceModelValue, Station

LOGGER = logging.getLogger(__name__)


class Recorder:
    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._variables: dict[tuple[str, str], str] = {}
        self._status: dict[str, dict] = {}

    def __call__(self, station_id: str, kind: str, data: dict) -> None:
        if kind == "variable":
            self._variables[(station_id, data["key"])] = data["value"]
        elif kind == "connection":
            self._status.setdefault(station_id, {})["online"] = False
        elif kind == "online":
            self._status.setdefault(station_id, {}).update(
                online=True, boot_status=data["boot_status"] or ""
            )
        elif kind == "boot" and data["status"] in ("Accepted", "Pending", "Rejected"):
            self._status.setdefault(station_id, {})["boot_status"] = data["status"]

    def flush(self) -> None:
        variables, self._variables = self._variables, {}
        status, self._status = self._status, {}
        if not variables and not status:
            return
        now = timezone.now()
        with transaction.atomic():
            ids = {sid for sid, _ in variables} | set(status)
            pks = dict(Station.objects.filter(station_id__in=ids).values_list("station_id", "pk"))
            rows = [
                DeviceModelValue(station_id=pks[sid], key=key, value=value)
                for (sid, key), value in variables.items()
                if sid in pks
            ]
            DeviceModelValue.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["station", "key"],
                update_fields=["value", "updated_at"],
            )
            for station_id, fields in status.items():
                if fields.get("online"):
                    fields["last_seen"] = now
                Station.objects.filter(station_id=station_id).update(**fields)

    async def run(self) -> None:
        """Flush every `interval` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                await sync_to_async(self.flush, thread_sensitive=False)()
        finally:
            with contextlib.suppress(Exception):
                await sync_to_async(self.flush, thread_sensitive=False)()
