"""Run the enabled stations from the database in this process, logging what they do."""

from __future__ import annotations

import asyncio
import logging
import signal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stations.configs import station_configs
from stations.database import database_problem
from stations.engine.shard import Shard
from stations.models import Station
from stations.recorder import Recorder
from stations.sandbox import SandboxCsms

LOGGER = logging.getLogger("stations.run")


def describe(kind: str, data: dict) -> str | None:
    """One log line for an event a person would care about, or None to skip it."""
    if kind == "connection":
        if data.get("online"):
            return "connected"
        return f"cannot connect: {data['detail']}" if data.get("error") else "disconnected"
    if kind == "boot":
        return f"BootNotification {data['status']} (interval {data['interval']} s)"
    if kind == "status":
        return f"EVSE {data['evse_id']} connector {data['connector_id']} is {data['status']}"
    if kind == "transaction":
        info = data["transactionInfo"]
        text = (f"TransactionEvent {data['eventType']} #{data['seqNo']} {data['triggerReason']}"
                f" {info['chargingState']} tx {info['transactionId'][:8]}")
        return text + (" (offline)" if data.get("offline") else "")
    if kind == "authorize":
        return f"idToken {data['id_token']} {data['status']}"
    if kind == "variable":
        return f"stored {data['key']} = {data['value']}"
    return None


def log_event(station_id: str, kind: str, data: dict) -> None:
    text = describe(kind, data)
    if text:
        LOGGER.info("%s: %s", station_id, text)


class Command(BaseCommand):
    help = "Run the enabled stations from the database (no browser needed)."

    def add_arguments(self, parser):
        parser.add_argument("station_ids", nargs="*", help="only these stations")
        parser.add_argument("--ramp", type=float, default=50.0,
                            help="stations started per second (default 50)")
        parser.add_argument("--sandbox", metavar="PORT", type=int, nargs="?", const=9000,
                            help="also run the bundled sandbox CSMS on 127.0.0.1:PORT")
        parser.add_argument("--quiet", action="store_true", help="do not log every event")
        parser.add_argument("--no-validation", action="store_true",
                            help="skip JSON-schema validation (saves CPU in large fleets)")

    def handle(self, *args, **options):
        if problem := database_problem():
            raise CommandError(problem)
        stations = Station.objects.filter(enabled=True)
        if options["station_ids"]:
            stations = stations.filter(station_id__in=options["station_ids"])
        validate = settings.FLEET_SCHEMA_VALIDATION and not options["no_validation"]
        configs = station_configs(stations, validate_schema=validate)
        if not configs:
            raise CommandError("No enabled stations to run: add some in the admin first.")
        asyncio.run(self.run(configs, options))

    async def run(self, configs, options) -> None:
        recorder = Recorder()

        def sink(station_id, kind, data):
            recorder(station_id, kind, data)
            if not options["quiet"]:
                log_event(station_id, kind, data)

        sandbox = None
        if options["sandbox"]:
            sandbox = SandboxCsms()
            url = await sandbox.start("127.0.0.1", options["sandbox"])
            self.stdout.write(f"Sandbox CSMS listening on {url}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        shard = Shard(sink, ramp_per_second=options["ramp"], frame_hook=recorder.frame)
        writer = asyncio.ensure_future(recorder.run())
        self.stdout.write(f"Starting {len(configs)} stations at {options['ramp']:g}/s; "
                          "Ctrl-C stops them.")
        starting = asyncio.ensure_future(shard.start(configs))
        await stop.wait()
        self.stdout.write("Stopping stations...")
        starting.cancel()
        await shard.stop()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        ran = [config.station_id for config in configs]
        await sync_to_async(Station.objects.filter(station_id__in=ran).update)(online=False)
        if sandbox is not None:
            await sandbox.stop()
        self.stdout.write("Stopped.")
