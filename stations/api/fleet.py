"""The fleet's totals, as the dashboard's tiles show them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ..engine.summary import fleet_totals
from ..models import Station, Transaction


class FleetTotalsSerializer(serializers.Serializer):
    stations = serializers.IntegerField(help_text="Enabled stations.")
    connected = serializers.IntegerField()
    offline = serializers.IntegerField()
    available = serializers.IntegerField()
    occupied = serializers.IntegerField()
    charging = serializers.IntegerField()
    faulted = serializers.IntegerField()
    unavailable = serializers.IntegerField()
    active_transactions = serializers.IntegerField()
    power_kw = serializers.FloatField()
    energy_kwh = serializers.FloatField()


def totals() -> dict:
    """From what the engine last wrote (once a second), over the enabled stations."""
    rows = Station.objects.filter(enabled=True).values_list("online", "live__evses")
    result = fleet_totals((online, evses or {}) for online, evses in rows.iterator(2000))
    # A transaction is active until it has ended, whatever its EVSE last reported.
    result["active_transactions"] = Transaction.objects.filter(
        ended_at__isnull=True, station__enabled=True).count()
    result.pop("msgs_per_s", None)  # a rate: Prometheus has it (fleet_ocpp_messages_total)
    return result


class FleetView(APIView):
    @extend_schema(responses=FleetTotalsSerializer, tags=["fleet"],
                   summary="Stations by status, transactions, power and energy")
    def get(self, request):
        return Response(totals())
