"""Stations: list, read, create (with EVSEs and connectors), delete."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated

from .. import services
from ..models import Station
from .auth import ManagesStations
from .serializers import StationFilterSerializer, StationSerializer


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "size"
    max_page_size = 200


def filter_stations(stations, params: dict):
    """The dashboard's filters: status as its table counts it, part of the id."""
    status = params.get("status")
    if status == "Offline":
        stations = stations.filter(Q(online=False) | Q(status="Offline"))
    elif status:
        stations = stations.filter(online=True, status=status)
    if params.get("q"):
        stations = stations.filter(station_id__icontains=params["q"].strip())
    if params.get("enabled") is not None:
        stations = stations.filter(enabled=params["enabled"])
    return stations


@extend_schema_view(
    list=extend_schema(summary="Stations, 50 a page", parameters=[
        StationFilterSerializer,
        OpenApiParameter("size", int, description="Stations per page, at most 200."),
    ]),
    retrieve=extend_schema(summary="One station, with its EVSEs and their live state"),
    create=extend_schema(summary="Create a station with its EVSEs and connectors; "
                         "the engine starts it"),
    destroy=extend_schema(summary="Delete a station; the engine stops it"),
)
class StationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.CreateModelMixin, mixins.DestroyModelMixin,
                     viewsets.GenericViewSet):
    serializer_class = StationSerializer
    permission_classes = [IsAuthenticated, ManagesStations]
    pagination_class = Pages
    lookup_field = "station_id"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        stations = (Station.objects.select_related("template")
                    .prefetch_related("evses__connectors").order_by("station_id"))
        if self.action == "list":
            params = StationFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            stations = filter_stations(stations, params.validated_data)
        return stations

    def perform_destroy(self, station):
        shard = station.shard
        with transaction.atomic():
            station.delete()
            transaction.on_commit(lambda: services.stations_removed({shard}))
