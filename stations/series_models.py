"""The dashboard's chart history, as stored in the database (see stations.series)."""

from __future__ import annotations

from django.db import models

from .models import Station


class FleetSample(models.Model):
    """One second of the fleet chart. A ring: second `at` goes into slot `at % window`, so
    the table holds the window and no more, by upserts alone."""

    slot = models.PositiveIntegerField(primary_key=True)
    at = models.BigIntegerField(help_text="seconds since the epoch")
    # None: no shard reported that second (the chart leaves a gap).
    connected = models.IntegerField(null=True)
    charging = models.IntegerField(null=True)
    power_kw = models.FloatField(null=True)
    msgs_per_s = models.FloatField(null=True)


class TransactionPoint(models.Model):
    """One point of a transaction's power and energy chart, on a grid of series.TX_STEP_S
    seconds that is thinned out as the transaction grows (see series.tx_level)."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    transaction_id = models.CharField(max_length=36)
    cell = models.PositiveBigIntegerField(help_text="seconds since the epoch // TX_STEP_S")
    power_w = models.FloatField()
    energy_wh = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transaction_id", "cell"], name="one_point_per_cell"),
        ]
