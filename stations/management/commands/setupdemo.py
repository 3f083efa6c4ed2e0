"""Create the demo login and demo stations pointing at the bundled sandbox CSMS, once."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from stations.database import database_problem
from stations.models import Connector, Evse, Station, StationTemplate

DEMO_USER = "demo"
SANDBOX_URL = "ws://127.0.0.1:9000"


class Command(BaseCommand):
    help = "Create a demo login and a few demo stations (reuses what exists)."

    def add_arguments(self, parser):
        parser.add_argument("--csms-url", default=SANDBOX_URL,
                            help=f"where the demo stations connect (default {SANDBOX_URL})")

    @transaction.atomic
    def handle(self, *args, **options):
        if problem := database_problem():
            raise CommandError(problem)
        url = options["csms_url"]
        password = self.demo_login()
        template, _ = StationTemplate.objects.get_or_create(
            name="Demo AC",
            defaults={"id_pattern": "DEMO-{n:03d}", "csms_url": url, "evse_count": 2,
                      "connectors_per_evse": 1, "connector_type": "cType2",
                      "max_power_kw": 22},
        )
        created = 0
        if not Station.objects.filter(template=template).exists():
            created += template.create_stations(3)
        if not Station.objects.filter(station_id="DEMO-DC1").exists():
            station = Station.objects.create(station_id="DEMO-DC1", csms_url=url,
                                              model="SimCharger DC", serial_number="SN-DC1")
            evse = Evse.objects.create(station=station, evse_id=1, max_power_kw=150)
            Connector.objects.create(evse=evse, connector_id=1, connector_type="cCCS2")
            created += 1
        self.stdout.write(f"Demo stations: {created} created, "
                          f"{Station.objects.filter(station_id__startswith='DEMO-').count()} "
                          f"in all, connecting to {url}")
        self.stdout.write(f"Demo login: user {DEMO_USER!r}, password {password!r}")

    def demo_login(self) -> str:
        """The demo user's password, made once and kept beside the database."""
        path = settings.VAR_DIR / "demo-password.txt"
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USER).first()
        if user is not None and path.exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(9)
        if user is None:
            User.objects.create_superuser(DEMO_USER, password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password
