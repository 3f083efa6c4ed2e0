"""Station templates: list them, and create stations from one (the admin's action)."""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from ..models import StationTemplate
from .auth import ManagesStations
from .serializers import (
    CreatedStationsSerializer,
    CreateFromTemplateSerializer,
    TemplateSerializer,
)
from .stations import Pages


class TemplateViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TemplateSerializer
    pagination_class = Pages
    queryset = StationTemplate.objects.annotate(station_count=Count("stations")).order_by("name")

    @extend_schema(request=CreateFromTemplateSerializer,
                   responses={201: CreatedStationsSerializer},
                   summary="Create stations from this template, all or nothing")
    @action(detail=True, methods=["post"], url_path="create-stations",
            permission_classes=[IsAuthenticated, ManagesStations])
    def create_stations(self, request, pk=None):
        template = self.get_object()
        form = CreateFromTemplateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(form.create_stations(template), status=status.HTTP_201_CREATED)
