"""Whether the database is ready, so a command on a fresh checkout says what to run."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import OperationalError, ProgrammingError

NOT_MIGRATED = ("the database is not set up (or not up to date): run "
                "`python manage.py migrate` first (`make install` does it)")


def database_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why this process cannot use its database yet, or None when it can."""
    connection = connections[using]
    try:
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except (OperationalError, ProgrammingError) as exc:
        return f"cannot use the database ({exc}); check DATABASE_URL"
    return NOT_MIGRATED if unapplied else None
