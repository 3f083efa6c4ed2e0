from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from stations.configs import save_device_model_value, station_config, station_configs
from stations.engine.config import ConnectorConfig, EvseConfig, StationConfig
from stations.models import Connector, DeviceModelValue, Evse, Station, StationTemplate

pytestmark = pytest.mark.django_db


def test_it_translates_a_station_with_its_evses_connectors_and_variables(make_station, pki):
    station = make_station(
        "CS-42",
        security_profile=3,
        csms_url="wss://csms.example/ocpp",
        ca_cert=pki.ca_cert,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
        vendor="ACME",
        model="Wallbox",
        serial_number="SN-42",
        firmware_version="2.0",
    )
    # Created out of order to show the config lists them by id.
    dc = Evse.objects.create(station=station, evse_id=3, max_power_kw=Decimal("150.5"), phases=3)
    Connector.objects.create(evse=dc, connector_id=2, connector_type="cG105")
    Connector.objects.create(evse=dc, connector_id=1, connector_type="cCCS2")
    ac = Evse.objects.create(station=station, evse_id=2, max_power_kw=7, phases=1, voltage=120)
    Connector.objects.create(evse=ac, connector_id=1, connector_type="sType2")
    DeviceModelValue.objects.create(
        station=station, key="OCPPCommCtrlr/HeartbeatInterval/Actual", value="30"
    )

    config = station_config(station, validate_schema=False)

    assert config == StationConfig(
        station_id="CS-42",
        csms_url="wss://csms.example/ocpp",
        security_profile=3,
        password=None,
        ca_cert=pki.ca_cert,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
        vendor="ACME",
        model="Wallbox",
        serial_number="SN-42",
        firmware_version="2.0",
        evses=(
            EvseConfig(1, 22.0, (ConnectorConfig(1, "cType2"),), 230.0, 3),
            EvseConfig(2, 7.0, (ConnectorConfig(1, "sType2"),), 120.0, 1),
            EvseConfig(
                3, 150.5, (ConnectorConfig(1, "cCCS2"), ConnectorConfig(2, "cG105")), 230.0, 3
            ),
        ),
        variables={"OCPPCommCtrlr/HeartbeatInterval/Actual": "30"},
        validate_schema=False,
    )
    assert isinstance(config.evses[0].max_power_kw, float)


def test_blank_secrets_and_serial_number_become_none(make_station):
    config = station_config(make_station())
    assert (config.password, config.ca_cert, config.client_cert, config.client_key) == (
        None,
        None,
        None,
        None,
    )
    assert config.serial_number is None
    assert config.validate_schema is True


def test_a_basic_auth_station_gets_its_password(make_station):
    station = make_station(security_profile=1, password="a-sixteen-chars!")
    assert station_config(station).password == "a-sixteen-chars!"


def test_configs_for_many_stations_take_four_queries(django_assert_max_num_queries):
    StationTemplate.objects.create(
        name="Depot", csms_url="ws://csms/", evse_count=2, connectors_per_evse=2
    ).create_stations(50)
    for station in Station.objects.all()[:10]:
        DeviceModelValue.objects.create(station=station, key="A/B/Actual", value="1")

    with django_assert_max_num_queries(4):
        configs = station_configs(Station.objects.all())

    assert len(configs) == 50
    assert all(len(c.evses) == 2 and len(c.evses[1].connectors) == 2 for c in configs)
    assert sum(bool(c.variables) for c in configs) == 10


def test_configs_for_many_stations_match_the_single_station_config(make_station, pki):
    make_station("CS-1", evses=3, security_profile=1, password="a-sixteen-chars!")
    make_station("CS-2", ca_cert=pki.ca_cert, serial_number="SN-2")
    save_device_model_value("CS-2", "A/B/Actual", "1")

    many = station_configs(Station.objects.order_by("station_id"))

    assert many == [station_config(s) for s in Station.objects.order_by("station_id")]


def test_configs_for_a_large_fleet_are_loaded_in_chunks(monkeypatch):
    monkeypatch.setattr("stations.configs.CHUNK_SIZE", 7)
    StationTemplate.objects.create(name="Depot", csms_url="ws://csms/").create_stations(20)

    configs = station_configs(Station.objects.all())

    assert [c.station_id for c in configs] == [f"CS-{n:05d}" for n in range(1, 21)]
    assert all(c.evses == (EvseConfig(1),) for c in configs)


def test_configs_default_to_the_enabled_stations(make_station):
    make_station("CS-on")
    make_station("CS-off", enabled=False)
    assert [c.station_id for c in station_configs()] == ["CS-on"]


def test_configs_pass_schema_validation_through(make_station):
    make_station()
    assert station_configs(Station.objects.all(), validate_schema=False)[0].validate_schema is False


def test_a_prefetched_station_needs_no_further_queries(make_station, django_assert_num_queries):
    make_station(evses=3)
    station = Station.objects.prefetch_related("evses__connectors", "variable_values").get()

    with django_assert_num_queries(0):
        config = station_config(station)

    assert [e.evse_id for e in config.evses] == [1, 2, 3]


def test_saving_a_device_model_value_inserts_then_replaces_it(make_station):
    station = make_station()
    key = "OCPPCommCtrlr/HeartbeatInterval/Actual"

    save_device_model_value("CS-1", key, "60")
    first = DeviceModelValue.objects.get()
    DeviceModelValue.objects.filter(pk=first.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    save_device_model_value("CS-1", key, "300")

    saved = DeviceModelValue.objects.get()
    assert (saved.station, saved.key, saved.value) == (station, key, "300")
    assert saved.updated_at > timezone.now() - timedelta(minutes=1)
    assert station_config(Station.objects.get()).variables == {key: "300"}


def test_saved_values_are_kept_per_station_and_key(make_station):
    make_station("CS-1")
    make_station("CS-2")
    save_device_model_value("CS-1", "A/B/Actual", "1")
    save_device_model_value("CS-1", "A/C/Actual", "2")
    save_device_model_value("CS-2", "A/B/Actual", "3")
    assert sorted(DeviceModelValue.objects.values_list("station__station_id", "key", "value")) == [
        ("CS-1", "A/B/Actual", "1"),
        ("CS-1", "A/C/Actual", "2"),
        ("CS-2", "A/B/Actual", "3"),
    ]


def test_saving_a_value_for_an_unknown_station_fails_loudly():
    with pytest.raises(Station.DoesNotExist):
        save_device_model_value("nope", "A/B/Actual", "1")
