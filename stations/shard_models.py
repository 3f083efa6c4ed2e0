"""What the database remembers about each shard's copies, which a Redis restart does not
lose: who took the shard last, who last ran its stations, and whether that one stopped
cleanly. stations.leases decides on it whether a new copy may start at once."""

from __future__ import annotations

from django.db import models


class ShardRun(models.Model):
    shard = models.PositiveIntegerField(primary_key=True)
    # Bumped by every copy that takes the lease: that copy's identity here.
    epoch = models.PositiveBigIntegerField(default=0)
    holder = models.CharField(max_length=200, blank=True, help_text="host:pid:token")
    # The copy that last started the shard's stations; it alone may write their states.
    ran_epoch = models.PositiveBigIntegerField(null=True, blank=True)
    # That copy stopped sending and saved its stations' states (SIGTERM, fenced, lost).
    released = models.BooleanField(default=False)
    # Beat found no running copy since then (cleared when one takes the lease).
    waiting_since = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"shard {self.shard}"
