"""Stations, EVSEs, connectors and templates as the API reads and writes them.

Writing runs the admin's validation: the model fields' validators and `Model.clean()`
(security profile against URL, password, certificate and key), at least one EVSE, ids
unique per station and EVSE. The password and the private key are write-only: answers say
only whether one is set.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers
from rest_framework.settings import api_settings

from .. import services
from ..engine.summary import STATUS_WORDS
from ..models import (
    MAX_STATIONS_PER_BATCH,
    Connector,
    Evse,
    Station,
    StationLive,
    StationTemplate,
)
from ..rows import row_from_db
from ..validators import validate_id_pattern

PEM_FIELDS = ("ca_cert", "client_cert", "client_key")
SECRET_FIELDS = {"password": {"write_only": True, "style": {"input_type": "password"}},
                 "client_key": {"write_only": True}}


def drf_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    """A model's ValidationError as DRF's, "__all__" named as DRF names it."""
    if not hasattr(exc, "error_dict"):
        return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
    return serializers.ValidationError({
        api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field: messages
        for field, messages in exc.message_dict.items()
    })


def normalise_pem(attrs: dict) -> None:
    # Browsers and YAML files bring CRLF; OpenSSL and the ssl module prefer plain LF.
    for name in PEM_FIELDS:
        if attrs.get(name):
            attrs[name] = attrs[name].replace("\r\n", "\n").strip() + "\n"


class ConnectorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connector
        fields = ["connector_id", "connector_type", "max_power_kw"]


class EvseLiveSerializer(serializers.Serializer):
    """What the engine last reported about an EVSE (written to the database each second)."""

    connectors = serializers.DictField(child=serializers.CharField(),
                                       help_text="Connector id → OCPP connector status.")
    charging_state = serializers.CharField()
    power_w = serializers.FloatField()
    energy_wh = serializers.FloatField()
    soc = serializers.FloatField(allow_null=True)
    id_token = serializers.CharField(allow_null=True)
    transaction_id = serializers.CharField(allow_null=True)


class EvseSerializer(serializers.ModelSerializer):
    connectors = ConnectorSerializer(many=True, required=False,
                                     help_text="Default: connector 1, cType2.")
    live = serializers.SerializerMethodField()

    class Meta:
        model = Evse
        fields = ["evse_id", "max_power_kw", "phases", "voltage", "connectors", "live"]

    def validate_connectors(self, connectors):
        if not connectors:
            raise serializers.ValidationError("An EVSE needs at least one connector.")
        ids = [c["connector_id"] for c in connectors]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Connector ids must be unique within an EVSE.")
        return connectors

    def get_live(self, evse) -> EvseLiveSerializer:
        snapshot = self.context.get("live_evses", {}).get((evse.station_id, evse.evse_id))
        if snapshot is None:
            return None
        return {key: snapshot.get(key) for key in EvseLiveSerializer._declared_fields}


class StationListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        stations = list(data.all() if hasattr(data, "all") else data)
        self.context["live_evses"] = live_evses(stations)
        return super().to_representation(stations)


def live_evses(stations) -> dict:
    """{(station pk, EVSE id): live snapshot} for these stations, in one query."""
    stored = dict(StationLive.objects.filter(station__in=[s.pk for s in stations])
                  .values_list("station_id", "evses"))
    result = {}
    for station in stations:
        row = row_from_db(station, stored.get(station.pk))
        station.live_status = row["status"]
        for snapshot in row["evses"]:
            result[(station.pk, int(snapshot["evse_id"]))] = snapshot
    return result


class StationSerializer(serializers.ModelSerializer):
    evses = EvseSerializer(many=True, help_text="At least one.")
    template = serializers.SlugRelatedField(slug_field="name", read_only=True)
    has_password = serializers.SerializerMethodField()
    has_client_key = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField(help_text="Offline unless connected.")

    class Meta:
        model = Station
        fields = [
            "station_id", "enabled", "desired_online", "csms_url", "security_profile",
            "password", "has_password", "ca_cert", "client_cert", "client_key",
            "has_client_key", "vendor", "model", "serial_number", "firmware_version",
            "template", "created_at", "shard", "status", "online", "boot_status",
            "last_seen", "evses",
        ]
        read_only_fields = ["shard", "online", "boot_status", "last_seen"]
        extra_kwargs = SECRET_FIELDS
        list_serializer_class = StationListSerializer

    def get_has_password(self, station) -> bool:
        return bool(station.password)

    def get_has_client_key(self, station) -> bool:
        return bool(station.client_key)

    def get_status(self, station) -> str:
        return getattr(station, "live_status", None) or (
            station.status if station.online else "Offline")

    def to_representation(self, station):
        if "live_evses" not in self.context:
            self.context["live_evses"] = live_evses([station])
        return super().to_representation(station)

    def validate_evses(self, evses):
        if not evses:
            raise serializers.ValidationError("A station needs at least one EVSE.")
        ids = [e["evse_id"] for e in evses]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("EVSE ids must be unique within a station.")
        return evses

    def validate(self, attrs):
        normalise_pem(attrs)
        fields = {k: v for k, v in attrs.items() if k != "evses"}
        try:
            # The checks across fields that the admin makes (Model.clean()).
            Station(**fields).full_clean(validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise drf_errors(exc) from None
        return attrs

    @transaction.atomic
    def create(self, validated):
        evses = validated.pop("evses")
        station = Station.objects.create(**validated)
        for evse_data in evses:
            connectors = evse_data.pop("connectors", None) or [{"connector_id": 1}]
            evse = Evse.objects.create(station=station, **evse_data)
            Connector.objects.bulk_create(Connector(evse=evse, **c) for c in connectors)
        # The engine starts the station once the rows are committed.
        transaction.on_commit(services.stations_changed)
        return station


class StationFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_WORDS, required=False,
                                     help_text="As the dashboard counts it.")
    q = serializers.CharField(required=False, help_text="Part of the station id.")
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)


class TemplateSerializer(serializers.ModelSerializer):
    has_password = serializers.SerializerMethodField()
    has_client_key = serializers.SerializerMethodField()
    station_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = StationTemplate
        fields = ["id", "name", "id_pattern", "csms_url", "security_profile", "has_password",
                  "ca_cert", "client_cert", "has_client_key", "vendor", "model",
                  "firmware_version", "evse_count", "connectors_per_evse", "connector_type",
                  "max_power_kw", "station_count"]

    def get_has_password(self, template) -> bool:
        return bool(template.password)

    def get_has_client_key(self, template) -> bool:
        return bool(template.client_key)


# What StationTemplate.create_stations' errors are about.
_BULK_ERROR_FIELDS = {"invalid_count": "count", "invalid_start": "start",
                      "invalid_station_id": "id_pattern", "duplicate_ids": "id_pattern"}


class CreateFromTemplateSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=MAX_STATIONS_PER_BATCH)
    start = serializers.IntegerField(min_value=0, default=1,
                                     help_text="The number {n} of the first station.")
    id_pattern = serializers.CharField(
        required=False, max_length=60, validators=[validate_id_pattern],
        help_text="Instead of the template's, e.g. LT-{n:05d}.")

    def create_stations(self, template) -> dict:
        """All or nothing, as the admin's action: StationTemplate.create_stations."""
        data = self.validated_data
        if data.get("id_pattern"):
            template.id_pattern = data["id_pattern"]  # for this call only; not saved
        try:
            created = template.create_stations(data["count"], start=data["start"])
        except DjangoValidationError as exc:
            if hasattr(exc, "error_dict"):  # the template itself is invalid
                raise serializers.ValidationError({"template": exc.messages}) from None
            field = _BULK_ERROR_FIELDS.get(exc.code, api_settings.NON_FIELD_ERRORS_KEY)
            raise serializers.ValidationError({field: exc.messages}) from None
        transaction.on_commit(services.stations_changed)
        last = data["start"] + created - 1
        return {"created": created, "first_station_id": template.station_id_for(data["start"]),
                "last_station_id": template.station_id_for(last)}


class CreatedStationsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    first_station_id = serializers.CharField()
    last_station_id = serializers.CharField()
