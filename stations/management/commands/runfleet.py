"""Dashboard, engine and (optionally) the sandbox CSMS in one process: the embedded mode."""

from __future__ import annotations

import asyncio
import logging

import daphne.server  # noqa: F401,I001 - installs Twisted's asyncio reactor; must come first
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import get_default_application
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from twisted.internet import defer, reactor

from stations import embedded
from stations.database import database_problem
from stations.models import Station
from stations.shard_host import ShardHost

LOGGER = logging.getLogger("stations.run")


class Command(BaseCommand):
    help = "Run the dashboard and every enabled station in this process (embedded mode)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox", metavar="PORT", type=int, nargs="?", const=9000,
                            help="also run the bundled sandbox CSMS on 127.0.0.1:PORT")
        parser.add_argument("--no-engine", action="store_true",
                            help="serve the dashboard only (stations run on Celery workers)")

    def handle(self, *args, **options):
        if problem := database_problem():
            raise CommandError(problem)
        self.options = options
        self.stop = asyncio.Event()
        self.main_task = None
        server = daphne.server.Server(
            get_default_application(),
            endpoints=[f"tcp:port={options['port']}:interface={options['host']}"],
            ready_callable=self.ready,
            verbosity=0,
        )
        reactor.addSystemEventTrigger("before", "shutdown", self.shutdown)
        server.run()
        self.stdout.write("Stopped.")

    def ready(self):
        self.main_task = asyncio.get_event_loop().create_task(self.main())

    async def main(self):
        options = self.options
        if options["sandbox"]:
            csms = await embedded.start_sandbox("127.0.0.1", options["sandbox"])
            self.stdout.write(f"Sandbox CSMS listening on {csms.url}")
        self.stdout.write(f"Dashboard: http://{options['host']}:{options['port']}/  "
                          "(Ctrl-C stops everything)")
        if options["no_engine"] or settings.FLEET_MODE != "embedded":
            await self.stop.wait()
            return
        count = await sync_to_async(Station.objects.filter(enabled=True).count)()
        self.stdout.write(f"Starting {count} stations at {settings.FLEET_RAMP_PER_SECOND:g}/s")
        await ShardHost(None, layer=get_channel_layer()).run(self.stop)

    def shutdown(self):
        """Before the reactor stops: close the stations' connections, then the sandbox."""
        self.stdout.write("Stopping stations...")
        self.stop.set()

        async def finish():
            if self.main_task is not None:
                await asyncio.gather(self.main_task, return_exceptions=True)
            await sync_to_async(Station.objects.update)(online=False, status="Offline")
            await embedded.stop_sandbox()

        return defer.Deferred.fromFuture(asyncio.ensure_future(finish()))
