"""Plain data describing one station, as the engine receives it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectorConfig:
    connector_id: int
    # An OCPP ConnectorEnumType value, e.g. "cType2", "cCCS2", "sType2".
    connector_type: str = "cType2"


@dataclass(frozen=True)
class EvseConfig:
    evse_id: int
    max_power_kw: float = 22.0
    connectors: tuple[ConnectorConfig, ...] = (ConnectorConfig(1),)
    # Supply voltage per phase and phase count, used to turn power into current.
    voltage: float = 230.0
    phases: int = 3


@dataclass(slots=True)  # a shard keeps one per station for its whole life
class StationConfig:
    station_id: str
    csms_url: str
    # 0 none, 1 Basic auth, 2 TLS + Basic auth, 3 TLS + client certificate.
    security_profile: int = 0
    password: str | None = None
    # PEM text; profile 2-3 verify the CSMS against ca_cert, profile 3 presents client_cert.
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    vendor: str = "OpenFleet"
    model: str = "SimCharger"
    serial_number: str | None = None
    firmware_version: str = "1.0.0"
    evses: tuple[EvseConfig, ...] = (EvseConfig(1),)
    # Device-model values changed by the CSMS, keyed by DeviceModel.key(); persisted
    # by the caller so they survive a restart.
    variables: dict[str, str] = field(default_factory=dict)
    # Schema validation of every frame in and out; off saves CPU in load tests.
    validate_schema: bool = True
    # Seconds to wait for a CALLRESULT before the call counts as failed.
    response_timeout: float = 30.0
    # Reconnect backoff: first delay, cap, and the share of random jitter.
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    reconnect_jitter: float = 0.5
    # Seconds of simulated time per real second for charge curves (tests speed it up).
    time_scale: float = 1.0
