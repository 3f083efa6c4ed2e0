"""Stations as configured in the admin, and the values their CSMS changed at runtime."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinLengthValidator, MinValueValidator
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q

from .engine.publisher import frame_dict
from .validators import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    STATION_ID_MAX,
    STATION_ID_RE,
    validate_certificate_pem,
    validate_csms_url,
    validate_id_pattern,
    validate_password_string,
    validate_positive,
    validate_private_key_pem,
    validate_station_id,
)

# OCPP 2.0.1 ChargingStationType limits, so BootNotification never fails schema validation.
VENDOR_MAX = 50
MODEL_MAX = 20
SERIAL_MAX = 25
FIRMWARE_MAX = 50

MAX_STATIONS_PER_BATCH = 100_000


class SecurityProfile(models.IntegerChoices):
    NONE = 0, "0 – No security"
    BASIC_AUTH = 1, "1 – Basic auth"
    TLS_BASIC_AUTH = 2, "2 – TLS + Basic auth"
    TLS_CLIENT_CERT = 3, "3 – TLS + client certificate"


class ConnectorType(models.TextChoices):
    # The OCPP 2.0.1 schema's ConnectorEnumType. The ocpp library's enum also has 2.1
    # values (cChaoJi, cGBT, OppCharge) that a 2.0.1 CSMS would reject.
    C_CCS1 = "cCCS1", "cCCS1 – CCS Combo 1 (cable)"
    C_CCS2 = "cCCS2", "cCCS2 – CCS Combo 2 (cable)"
    C_G105 = "cG105", "cG105 – CHAdeMO (cable)"
    C_TESLA = "cTesla", "cTesla – Tesla (cable)"
    C_TYPE1 = "cType1", "cType1 – Type 1 / J1772 (cable)"
    C_TYPE2 = "cType2", "cType2 – Type 2 (cable)"
    S309_1P_16A = "s309-1P-16A", "s309-1P-16A – IEC 60309 1-phase 16 A socket"
    S309_1P_32A = "s309-1P-32A", "s309-1P-32A – IEC 60309 1-phase 32 A socket"
    S309_3P_16A = "s309-3P-16A", "s309-3P-16A – IEC 60309 3-phase 16 A socket"
    S309_3P_32A = "s309-3P-32A", "s309-3P-32A – IEC 60309 3-phase 32 A socket"
    S_BS1361 = "sBS1361", "sBS1361 – UK domestic socket"
    S_CEE_7_7 = "sCEE-7-7", "sCEE-7-7 – Schuko socket"
    S_TYPE2 = "sType2", "sType2 – Type 2 socket"
    S_TYPE3 = "sType3", "sType3 – Type 3 socket"
    OTHER_1PH_MAX_16A = "Other1PhMax16A", "Other1PhMax16A – other 1-phase socket ≤ 16 A"
    OTHER_1PH_OVER_16A = "Other1PhOver16A", "Other1PhOver16A – other 1-phase socket > 16 A"
    OTHER_3PH = "Other3Ph", "Other3Ph – other 3-phase socket"
    PAN = "Pan", "Pan – pantograph"
    W_INDUCTIVE = "wInductive", "wInductive – wireless inductive"
    W_RESONANT = "wResonant", "wResonant – wireless resonant"
    UNDETERMINED = "Undetermined", "Undetermined"
    UNKNOWN = "Unknown", "Unknown"


class BootStatus(models.TextChoices):
    NONE = "", "—"
    ACCEPTED = "Accepted", "Accepted"
    PENDING = "Pending", "Pending"
    REJECTED = "Rejected", "Rejected"


def serial_number_for(station_id: str) -> str:
    """A serial number derived from the station id, within OCPP's 25 characters."""
    serial = f"SN-{station_id}"
    if len(serial) <= SERIAL_MAX:
        return serial
    return "SN-" + hashlib.blake2b(station_id.encode(), digest_size=11).hexdigest()


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _max_params() -> int:
    # SQLite builds differ in how many bound variables a query may have; stay below any.
    return min(connection.features.max_query_params or 10_000, 10_000) - 10


def _describe_ids(ids: list[str], shown: int = 10) -> str:
    text = ", ".join(ids[:shown])
    if len(ids) > shown:
        text += f" and {len(ids) - shown:,} more"
    return text


# --- connection settings shared by stations and templates ----------------------------------


class ConnectionSettings(models.Model):
    csms_url = models.CharField(
        "CSMS URL",
        max_length=500,
        validators=[validate_csms_url],
        help_text="The CSMS websocket endpoint; the station id is appended as the last "
        "path segment. Profiles 2 and 3 need wss://.",
    )
    security_profile = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices, default=SecurityProfile.NONE
    )
    password = models.CharField(
        max_length=PASSWORD_MAX,
        blank=True,
        validators=[validate_password_string],
        help_text=f"Basic auth password, {PASSWORD_MIN}-{PASSWORD_MAX} characters; "
        "needed for profiles 1 and 2.",
    )
    ca_cert = models.TextField(
        "CA certificates",
        blank=True,
        validators=[validate_certificate_pem],
        help_text="PEM bundle used to verify the CSMS for profiles 2 and 3; "
        "blank uses the system trust store.",
    )
    client_cert = models.TextField(
        "client certificate",
        blank=True,
        validators=[validate_certificate_pem],
        help_text="PEM certificate (and chain) the station presents; needed for profile 3.",
    )
    client_key = models.TextField(
        "client private key",
        blank=True,
        validators=[validate_private_key_pem],
        help_text="Unencrypted PEM private key of the client certificate; needed for profile 3.",
    )
    vendor = models.CharField(max_length=VENDOR_MAX, default="OpenFleet")
    model = models.CharField(max_length=MODEL_MAX, default="SimCharger")
    firmware_version = models.CharField(max_length=FIRMWARE_MAX, default="1.0.0")

    class Meta:
        abstract = True

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        profile = self.security_profile
        url = (self.csms_url or "").lower()
        uses_tls = profile in (SecurityProfile.TLS_BASIC_AUTH, SecurityProfile.TLS_CLIENT_CERT)
        uses_basic_auth = profile in (SecurityProfile.BASIC_AUTH, SecurityProfile.TLS_BASIC_AUTH)
        if uses_tls and url.startswith("ws://"):
            errors.setdefault("csms_url", []).append(
                f"Security profile {profile} uses TLS: the URL must start with wss://."
            )
        if uses_basic_auth and not self.password:
            errors.setdefault("password", []).append(
                f"Security profile {profile} uses Basic auth: set a password."
            )
        if profile == SecurityProfile.TLS_CLIENT_CERT:
            if not self.client_cert:
                errors.setdefault("client_cert", []).append(
                    "Security profile 3 needs a client certificate."
                )
            if not self.client_key:
                errors.setdefault("client_key", []).append(
                    "Security profile 3 needs the client certificate's private key."
                )
        if errors:
            raise ValidationError(errors)


class StationTemplate(ConnectionSettings):
    name = models.CharField(max_length=100, unique=True)
    id_pattern = models.CharField(
        "id pattern",
        max_length=60,
        default="CS-{n:05d}",
        validators=[validate_id_pattern],
        help_text="Python format string with the station number as {n}, e.g. CS-{n:05d}.",
    )
    evse_count = models.PositiveSmallIntegerField(
        "EVSEs per station", default=1, validators=[MinValueValidator(1)]
    )
    connectors_per_evse = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)]
    )
    connector_type = models.CharField(
        max_length=20, choices=ConnectorType.choices, default=ConnectorType.C_TYPE2
    )
    max_power_kw = models.DecimalField(
        "max power per EVSE (kW)",
        max_digits=7,
        decimal_places=2,
        default=Decimal("22"),
        validators=[validate_positive],
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(evse_count__gte=1), name="template_evse_count_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(connectors_per_evse__gte=1), name="template_connectors_gte_1"
            ),
            models.CheckConstraint(condition=Q(max_power_kw__gt=0), name="template_power_gt_0"),
        ]

    def __str__(self):
        return self.name

    def station_id_for(self, n: int) -> str:
        return self.id_pattern.format(n=n)

    def create_stations(self, count: int, start: int = 1) -> int:
        """Create `count` stations numbered from `start`, with EVSEs and connectors.

        All or nothing: raises ValidationError, creating nothing, when an id is invalid
        or already taken.
        """
        if not 1 <= count <= MAX_STATIONS_PER_BATCH:
            raise ValidationError(
                "The number of stations must be between 1 and %(max)s.",
                code="invalid_count",
                params={"max": f"{MAX_STATIONS_PER_BATCH:,}"},
            )
        if start < 0:
            raise ValidationError("The start number cannot be negative.", code="invalid_start")
        self.full_clean(validate_unique=False, validate_constraints=False)

        ids = [self.station_id_for(n) for n in range(start, start + count)]
        invalid = [i for i in ids if not STATION_ID_RE.fullmatch(i)]
        if invalid:
            raise ValidationError(
                "The pattern gives invalid station ids: %(ids)s.",
                code="invalid_station_id",
                params={"ids": _describe_ids(invalid)},
            )
        if len(set(ids)) != len(ids):
            raise ValidationError("The pattern gives the same id twice.", code="duplicate_ids")

        try:
            with transaction.atomic():
                self._check_free(ids)
                self._bulk_create(ids)
        except IntegrityError:
            # Someone else created one of these ids between the check and the insert.
            self._check_free(ids)
            raise
        return count

    def _check_free(self, ids: list[str]) -> None:
        taken: list[str] = []
        for chunk in _chunks(ids, _max_params()):
            rows = Station.objects.filter(station_id__in=chunk).values_list("station_id", flat=True)
            taken.extend(rows)
        if taken:
            taken.sort()
            raise ValidationError(
                "These station ids already exist: %(ids)s. Nothing was created.",
                code="station_id_taken",
                params={"ids": _describe_ids(taken)},
            )

    def _bulk_create(self, ids: list[str], **overrides) -> None:
        """Stations, EVSEs and connectors as the template says; `overrides` set station
        fields (a load test points them at its own CSMS and keeps them disabled)."""
        fields = {
            "template": self, "csms_url": self.csms_url,
            "security_profile": self.security_profile, "password": self.password,
            "ca_cert": self.ca_cert, "client_cert": self.client_cert,
            "client_key": self.client_key, "vendor": self.vendor, "model": self.model,
            "firmware_version": self.firmware_version, **overrides,
        }
        stations = Station.objects.bulk_create(
            [
                Station(station_id=station_id, serial_number=serial_number_for(station_id),
                        **fields)
                for station_id in ids
            ]
        )
        if any(s.pk is None for s in stations):
            # Backends that cannot return ids from a bulk insert.
            pks = {}
            for chunk in _chunks(ids, _max_params()):
                rows = Station.objects.filter(station_id__in=chunk).values_list("station_id", "pk")
                pks.update(rows)
            for s in stations:
                s.pk = pks[s.station_id]

        evses = Evse.objects.bulk_create(
            [
                Evse(station=s, evse_id=evse_id, max_power_kw=self.max_power_kw)
                for s in stations
                for evse_id in range(1, self.evse_count + 1)
            ]
        )
        if any(e.pk is None for e in evses):
            station_pks = [s.pk for s in stations]
            pks = {}
            for chunk in _chunks(station_pks, _max_params()):
                rows = Evse.objects.filter(station_id__in=chunk).values_list(
                    "station_id", "evse_id", "pk"
                )
                pks.update({(st, ev): pk for st, ev, pk in rows})
            for e in evses:
                e.pk = pks[(e.station_id, e.evse_id)]

        Connector.objects.bulk_create(
            [
                Connector(evse=e, connector_id=connector_id, connector_type=self.connector_type)
                for e in evses
                for connector_id in range(1, self.connectors_per_evse + 1)
            ]
        )


class Station(ConnectionSettings):
    station_id = models.CharField(
        "station id",
        max_length=STATION_ID_MAX,
        unique=True,
        validators=[validate_station_id],
        help_text=f"The OCPP identity: 1-{STATION_ID_MAX} printable ASCII characters "
        "without spaces, “:” or “/”.",
    )
    serial_number = models.CharField(max_length=SERIAL_MAX, blank=True)
    enabled = models.BooleanField(
        default=True, help_text="Disabled stations are not started by the engine."
    )
    template = models.ForeignKey(
        StationTemplate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stations",
        help_text="The template the station was created from, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Desired state, written by stations.services; the engine follows it.
    desired_online = models.BooleanField(
        "connected", default=True, help_text="Off keeps the station disconnected from its CSMS."
    )
    # Which engine shard runs the station; assigned by stations.services.
    shard = models.PositiveIntegerField(null=True, blank=True, db_index=True, editable=False)

    # Reported by the engine.
    status = models.CharField(max_length=16, default="Offline", db_index=True, editable=False)
    online = models.BooleanField(default=False)
    boot_status = models.CharField(
        max_length=8, choices=BootStatus.choices, default=BootStatus.NONE, blank=True
    )
    last_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["station_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(security_profile__in=SecurityProfile.values),
                name="station_security_profile_valid",
            ),
        ]

    def __str__(self):
        return self.station_id


class Evse(models.Model):
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="evses")
    evse_id = models.PositiveIntegerField("EVSE id", validators=[MinValueValidator(1)])
    max_power_kw = models.DecimalField(
        "max power (kW)",
        max_digits=7,
        decimal_places=2,
        default=Decimal("22"),
        validators=[validate_positive],
    )
    phases = models.PositiveSmallIntegerField(choices=[(1, "1"), (3, "3")], default=3)
    voltage = models.PositiveSmallIntegerField(
        "voltage per phase (V)", default=230, validators=[MinValueValidator(1)]
    )
    # Desired state of the things at the EVSE, written by stations.services.
    ev_plugged = models.BooleanField("EV plugged in", default=False)
    faulted = models.BooleanField(default=False)
    ev_drawing = models.BooleanField("EV draws power", default=True)

    class Meta:
        verbose_name = "EVSE"
        verbose_name_plural = "EVSEs"
        ordering = ["station", "evse_id"]
        constraints = [
            models.UniqueConstraint(fields=["station", "evse_id"], name="unique_evse_per_station"),
            models.CheckConstraint(condition=Q(evse_id__gte=1), name="evse_id_gte_1"),
            models.CheckConstraint(condition=Q(max_power_kw__gt=0), name="evse_power_gt_0"),
            models.CheckConstraint(condition=Q(phases__in=[1, 3]), name="evse_phases_1_or_3"),
            models.CheckConstraint(condition=Q(voltage__gt=0), name="evse_voltage_gt_0"),
        ]

    def __str__(self):
        return f"{self.station} / EVSE {self.evse_id}"


class Connector(models.Model):
    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveIntegerField("connector id", validators=[MinValueValidator(1)])
    connector_type = models.CharField(
        max_length=20, choices=ConnectorType.choices, default=ConnectorType.C_TYPE2
    )
    max_power_kw = models.DecimalField(
        "max power (kW)",
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[validate_positive],
        help_text="Blank: limited by the EVSE only.",
    )

    class Meta:
        ordering = ["evse", "connector_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["evse", "connector_id"], name="unique_connector_per_evse"
            ),
            models.CheckConstraint(condition=Q(connector_id__gte=1), name="connector_id_gte_1"),
            models.CheckConstraint(
                condition=Q(max_power_kw__isnull=True) | Q(max_power_kw__gt=0),
                name="connector_power_gt_0",
            ),
        ]

    def __str__(self):
        return f"Connector {self.connector_id} ({self.connector_type})"


class DeviceModelValue(models.Model):
    """A device-model value the CSMS changed, given back to the engine when it starts."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="variable_values")
    key = models.CharField(
        max_length=255,
        validators=[MinLengthValidator(1)],
        help_text="e.g. OCPPCommCtrlr/HeartbeatInterval/Actual",
    )
    # OCPP attribute values are at most 2500 characters (SetVariables allows 1000).
    value = models.TextField(blank=True, validators=[MaxLengthValidator(2500)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "device-model value"
        ordering = ["station", "key"]
        constraints = [
            models.UniqueConstraint(fields=["station", "key"], name="unique_variable_per_station"),
        ]

    def __str__(self):
        # Without the value: BasicAuthPassword is stored here and __str__ ends up in pages.
        return self.key


class StationLive(models.Model):
    """What the engine last reported about a station, and the state it resumes from."""

    station = models.OneToOneField(
        Station, on_delete=models.CASCADE, primary_key=True, related_name="live"
    )
    # Per EVSE: connector status, charging state, kW, kWh, SoC, running transaction.
    evses = models.JSONField(default=dict)
    # stations.engine Station.export_state(): transactions, meter, queued messages.
    engine_state = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class Frame(models.Model):
    """One OCPP frame in a station's message log.

    A station's log is a ring of FLEET_FRAME_LOG slots, written in turn, so a log stays
    bounded by upserts alone, with no trimming pass and no read before a write.
    """

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="frames")
    slot = models.PositiveIntegerField()
    # The frame's identity (engine.publisher.FrameIds): microseconds since the epoch when
    # it was seen, increasing; its live copy on the station's page has the same one.
    seq = models.PositiveBigIntegerField()
    at = models.FloatField(help_text="seconds since the epoch")
    direction = models.CharField(max_length=3)  # "in" (from the CSMS) or "out"
    message_type = models.PositiveSmallIntegerField()  # 2 CALL, 3 CALLRESULT, 4 CALLERROR
    # Text, not bounded chars: a misbehaving CSMS's ids and actions are logged as sent.
    unique_id = models.TextField()
    action = models.TextField(blank=True)
    payload = models.JSONField(null=True)
    latency_ms = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["station", "slot"], name="one_frame_per_slot"),
        ]

    @classmethod
    def log_of(cls, station_id: str) -> list[dict]:
        """A station's logged frames, oldest first, as the dashboard's live log has them."""
        rows = cls.objects.filter(station__station_id=station_id).order_by("seq").values_list(
            "seq", "direction", "message_type", "unique_id", "action", "payload", "latency_ms")
        return [frame_dict(row) for row in rows]


class Transaction(models.Model):
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="transactions")
    evse_id = models.PositiveIntegerField()
    transaction_id = models.CharField(max_length=36, unique=True)
    id_token = models.CharField(max_length=36, blank=True)
    remote_start_id = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    charging_state = models.CharField(max_length=16, blank=True)
    trigger_reason = models.CharField(max_length=32, blank=True)
    stopped_reason = models.CharField(max_length=32, blank=True)
    last_seq_no = models.PositiveIntegerField(default=0)
    energy_wh = models.FloatField(default=0)
    offline = models.BooleanField(default=False, help_text="Some of its events were made offline.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["station", "-started_at"])]

    def __str__(self):
        return self.transaction_id


from .api.models import ApiToken  # noqa: E402,F401 - models of this app
from .loadtest_models import LoadTestRun, Scenario  # noqa: E402,F401 - models of this app
from .series_models import FleetSample, TransactionPoint  # noqa: E402,F401 - models of this app
from .shard_models import ShardRun  # noqa: E402,F401 - models of this app
