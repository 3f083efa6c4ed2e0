"""Translation between station rows and the engine's plain dataclasses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice

from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from .engine.config import ConnectorConfig, EvseConfig, StationConfig
from .models import Connector, DeviceModelValue, Evse, Station

# Stations are loaded this many at a time, so a large fleet never puts more ids into one
# IN (...) than SQLite accepts and memory stays flat.
CHUNK_SIZE = 2000


def _evse_config(
    evse_id: int,
    max_power_kw: Decimal,
    voltage: int,
    phases: int,
    connectors: Iterable[ConnectorConfig],
) -> EvseConfig:
    connectors = tuple(sorted(connectors, key=lambda c: c.connector_id))
    # An EVSE always has a connector; should a row have lost its last one, the engine's
    # default stands in rather than an EVSE nothing can plug into.
    extra = {"connectors": connectors} if connectors else {}
    return EvseConfig(
        evse_id=evse_id,
        max_power_kw=float(max_power_kw),
        voltage=float(voltage),
        phases=phases,
        **extra,
    )


class _Shared(dict):
    """One object for each distinct value: stations made from one template read the same
    URL, vendor, certificates and EVSE layout from their rows, and a shard keeps thousands
    of configs for its whole life."""

    def __call__(self, value):
        return self.setdefault(value, value)


def _station_config(
    station: Station,
    evses: Iterable[EvseConfig],
    variables: dict[str, str],
    validate_schema: bool,
    same: _Shared,
) -> StationConfig:
    return StationConfig(
        station_id=station.station_id,
        csms_url=same(station.csms_url),
        security_profile=int(station.security_profile),
        password=same(station.password or None),
        ca_cert=same(station.ca_cert or None),
        client_cert=same(station.client_cert or None),
        client_key=same(station.client_key or None),
        vendor=same(station.vendor),
        model=same(station.model),
        serial_number=station.serial_number or None,
        firmware_version=same(station.firmware_version),
        evses=same(tuple(sorted(evses, key=lambda e: e.evse_id))),
        variables={same(key): same(value) for key, value in variables.items()},
        validate_schema=validate_schema,
    )


def station_config(station: Station, *, validate_schema: bool = True) -> StationConfig:
    """The engine's view of one station, with its EVSEs, connectors and changed variables.

    Relations prefetched by the caller (evses__connectors, variable_values) are used as
    they are; missing ones cost a query each.
    """
    prefetch_related_objects(
        [station],
        Prefetch("evses", queryset=Evse.objects.order_by()),
        Prefetch("evses__connectors", queryset=Connector.objects.order_by()),
        Prefetch("variable_values", queryset=DeviceModelValue.objects.order_by()),
    )
    evses = [
        _evse_config(
            e.evse_id,
            e.max_power_kw,
            e.voltage,
            e.phases,
            (ConnectorConfig(c.connector_id, c.connector_type) for c in e.connectors.all()),
        )
        for e in station.evses.all()
    ]
    variables = {v.key: v.value for v in station.variable_values.all()}
    return _station_config(station, evses, variables, validate_schema, _Shared())


def _batches(items: Iterable[Station], size: int) -> Iterator[list[Station]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def station_configs(
    stations: QuerySet[Station] | None = None, *, validate_schema: bool = True
) -> list[StationConfig]:
    """Configs for many stations: four queries per CHUNK_SIZE stations.

    Without a queryset, all enabled stations. The related rows are read as plain tuples:
    prefetching model instances costs about ten times as much CPU for a large fleet.
    """
    if stations is None:
        stations = Station.objects.filter(enabled=True)
    configs, same = [], _Shared()
    for batch in _batches(stations.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE):
        pks = [s.pk for s in batch]

        connectors: dict[int, list[ConnectorConfig]] = defaultdict(list)
        rows = (
            Connector.objects.filter(evse__station__in=pks)
            .order_by()
            .values_list("evse", "connector_id", "connector_type")
        )
        for evse_pk, connector_id, connector_type in rows:
            connectors[evse_pk].append(same(ConnectorConfig(connector_id, connector_type)))

        evses: dict[int, list[EvseConfig]] = defaultdict(list)
        rows = (
            Evse.objects.filter(station__in=pks)
            .order_by()
            .values_list("pk", "station", "evse_id", "max_power_kw", "voltage", "phases")
        )
        for evse_pk, station_pk, evse_id, power, voltage, phases in rows:
            evses[station_pk].append(same(
                _evse_config(evse_id, power, voltage, phases, connectors.get(evse_pk, ()))
            ))

        variables: dict[int, dict[str, str]] = defaultdict(dict)
        rows = (
            DeviceModelValue.objects.filter(station__in=pks)
            .order_by()
            .values_list("station", "key", "value")
        )
        for station_pk, key, value in rows:
            variables[station_pk][key] = value

        configs.extend(
            _station_config(s, evses[s.pk], variables[s.pk], validate_schema, same)
            for s in batch
        )
    return configs


def save_device_model_value(station_id: str, key: str, value: str) -> None:
    """Store a value the CSMS changed, replacing the previous one for the same key.

    Raises Station.DoesNotExist for an unknown station id.
    """
    pk = Station.objects.values_list("pk", flat=True).get(station_id=station_id)
    DeviceModelValue.objects.bulk_create(
        [DeviceModelValue(station_id=pk, key=key, value=value)],
        update_conflicts=True,
        unique_fields=["station", "key"],
        update_fields=["value", "updated_at"],
    )
