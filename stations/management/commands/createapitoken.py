"""Issue an API token from the command line, for pipelines that have no one at the admin."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from stations.api.models import ApiToken
from stations.database import database_problem


class Command(BaseCommand):
    help = ("Issue an API token for a user and print it (only its hash is stored). "
            "The token acts as that user.")

    def add_arguments(self, parser):
        parser.add_argument("username", help="an existing user (createsuperuser makes one)")
        parser.add_argument("--name", default="command line", help="what uses the token")
        parser.add_argument("--expires-days", type=float,
                            help="valid for this many days (default: until revoked)")

    def handle(self, *args, **options):
        if problem := database_problem():
            raise CommandError(problem)
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}: create it first "
                               "(manage.py createsuperuser)")
        days = options["expires_days"]
        if days is not None and not 0 < days < 36_500:
            raise CommandError("--expires-days must be a number of days above 0")
        expires = timezone.now() + timedelta(days=days) if days is not None else None
        _, plain = ApiToken.create_for(user, options["name"], expires_at=expires)
        # Alone on stdout, so a script can do TOKEN=$(manage.py createapitoken ci).
        self.stdout.write(plain)
