"""The Celery app: engine workers run shards (queue `engine`); beat reconciles them."""

import contextlib
import os
import signal

from celery import Celery
from celery.signals import worker_shutting_down

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")

app = Celery("fleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_shutting_down.connect
def stop_shards(**_):
    """Tell the children running shards to stop their stations.

    A warm shutdown waits for running tasks, and a shard task runs until told to stop;
    the children do not see the worker's SIGTERM by themselves.
    """
    from billiard import process

    for child in process.active_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
