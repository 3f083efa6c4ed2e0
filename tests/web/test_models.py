import json
from decimal import Decimal
from pathlib import Path

import ocpp.v201
import pytest
from django.core.exceptions import ValidationError

from stations.models import (
    MAX_STATIONS_PER_BATCH,
    Connector,
    ConnectorType,
    Evse,
    Station,
    StationTemplate,
    serial_number_for,
    validate_certificate_pem,
    validate_csms_url,
    validate_id_pattern,
    validate_private_key_pem,
    validate_station_id,
)

pytestmark = pytest.mark.django_db


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        instance.full_clean()
    return excinfo.value.message_dict


def station(**fields) -> Station:
    return Station(**{"station_id": "CS-1", "csms_url": "ws://csms.example/ocpp", **fields})


# --- station id -----------------------------------------------------------------------------


@pytest.mark.parametrize("station_id", ["CS-00001", "a", "x" * 36, "CS!~*_=+|@.", "A;B%20"])
def test_it_accepts_ocpp_identities(station_id):
    validate_station_id(station_id)


@pytest.mark.parametrize(
    "station_id", ["", "x" * 37, "CS:1", "CS/1", "CS 1", "Café", "CS\t1", "CS\n"]
)
def test_it_rejects_station_ids_that_break_basic_auth_or_the_url(station_id):
    with pytest.raises(ValidationError):
        validate_station_id(station_id)


# --- CSMS URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ws://localhost:9000/ocpp",
        "wss://csms.example.com",
        "wss://csms.example.com/ocpp/v201/",
        "ws://csms:9000",
        "ws://10.0.0.1/ocpp",
        "ws://[::1]:9000/ocpp",
        "WSS://CSMS.EXAMPLE.COM/",
    ],
)
def test_it_accepts_websocket_urls(url):
    validate_csms_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://csms.example.com/ocpp",
        "https://csms.example.com/ocpp",
        "ws://",
        "ws:///ocpp",
        "garbage",
        "",
        "wss://csms.example.com:99999/",
        "wss://csms.example.com:port/",
        "ws://user:secret@csms.example.com/",
        "ws://csms.example.com/ocpp?token=1",
        "ws://csms.example.com/ocpp#frag",
        "ws://csms example.com/",
        "ws://-bad-.example.com/",
        "ws://[bad]/",
        "ws://[::1/",
    ],
)
def test_it_rejects_urls_a_station_cannot_connect_to(url):
    with pytest.raises(ValidationError):
        validate_csms_url(url)


# --- security profiles ----------------------------------------------------------------------


def test_a_profile_0_station_needs_no_credentials():
    station(security_profile=0).full_clean()


@pytest.mark.parametrize("profile", [2, 3])
def test_it_rejects_a_ws_url_for_tls_profiles(profile, pki):
    errors = errors_of(
        station(
            security_profile=profile,
            password="p" * 16,
            client_cert=pki.client_cert,
            client_key=pki.client_key,
        )
    )
    assert list(errors) == ["csms_url"]
    assert "wss://" in errors["csms_url"][0]


@pytest.mark.parametrize("profile", [1, 2])
def test_it_requires_a_password_for_basic_auth_profiles(profile):
    errors = errors_of(station(security_profile=profile, csms_url="wss://csms.example/"))
    assert list(errors) == ["password"]


@pytest.mark.parametrize("length", [15, 41])
def test_it_rejects_passwords_outside_16_to_40_characters(length):
    errors = errors_of(station(security_profile=1, password="p" * length))
    assert "password" in errors


@pytest.mark.parametrize("length", [16, 40])
def test_it_accepts_passwords_of_16_to_40_characters(length):
    station(security_profile=1, password="p" * length).full_clean()


def test_it_requires_a_client_certificate_and_key_for_profile_3():
    errors = errors_of(station(security_profile=3, csms_url="wss://csms.example/"))
    assert set(errors) == {"client_cert", "client_key"}


def test_a_complete_profile_3_station_is_valid(pki):
    station(
        security_profile=3,
        csms_url="wss://csms.example/",
        ca_cert=pki.ca_cert,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    ).full_clean()


# --- PEM ------------------------------------------------------------------------------------


def test_it_accepts_certificate_bundles_with_explanatory_text(pki):
    bundle = f"# Issuer: Test CA\n{pki.ca_cert}\nsubject=client\n{pki.client_cert}"
    validate_certificate_pem(bundle)
    validate_certificate_pem(pki.ca_cert.replace("\n", "\r\n"))


def test_it_accepts_a_private_key(pki):
    validate_private_key_pem(pki.client_key)


@pytest.mark.parametrize(
    "text",
    [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    ],
)
def test_it_rejects_malformed_pem(text):
    with pytest.raises(ValidationError, match="Malformed PEM"):
        validate_certificate_pem(text)


def test_it_rejects_a_private_key_where_a_certificate_belongs(pki):
    with pytest.raises(ValidationError, match="CERTIFICATE"):
        validate_certificate_pem(pki.client_key)


def test_it_rejects_a_certificate_where_the_private_key_belongs(pki):
    with pytest.raises(ValidationError):
        validate_private_key_pem(pki.client_cert)


def test_it_rejects_truncated_certificates(pki):
    with pytest.raises(ValidationError):
        validate_certificate_pem(pki.client_cert.replace("-----END CERTIFICATE-----", ""))


def test_it_rejects_mismatched_begin_and_end_lines(pki):
    text = pki.client_cert.replace("END CERTIFICATE", "END PUBLIC KEY")
    with pytest.raises(ValidationError):
        validate_certificate_pem(text)


def test_it_rejects_encrypted_private_keys():
    text = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"
    with pytest.raises(ValidationError, match="passphrase"):
        validate_private_key_pem(text)


# --- EVSEs and connectors -------------------------------------------------------------------


def test_connector_types_are_exactly_those_of_the_ocpp_2_0_1_schema():
    schema_path = Path(ocpp.v201.__file__).parent / "schemas" / "ReserveNowRequest.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8-sig"))
    assert ConnectorType.values == schema["definitions"]["ConnectorEnumType"]["enum"]


def test_an_evse_id_is_unique_per_station_only(make_station):
    first, second = make_station("CS-1"), make_station("CS-2")
    Evse(station=second, evse_id=2, max_power_kw=11).full_clean()
    errors = errors_of(Evse(station=first, evse_id=1))
    assert "__all__" in errors


def test_an_evse_needs_positive_power_and_one_or_three_phases(make_station):
    errors = errors_of(Evse(station=make_station(), evse_id=2, max_power_kw=0, phases=2))
    assert set(errors) == {"max_power_kw", "phases"}


def test_a_connector_id_is_unique_per_evse(make_station):
    evse = make_station().evses.get()
    errors = errors_of(Connector(evse=evse, connector_id=1))
    assert "__all__" in errors
    Connector(evse=evse, connector_id=2, connector_type="cCCS2").full_clean()


def test_a_connector_rejects_types_outside_the_ocpp_enum(make_station):
    evse = make_station().evses.get()
    errors = errors_of(Connector(evse=evse, connector_id=2, connector_type="cChaoJi"))
    assert "connector_type" in errors


# --- templates ------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["CS-{n:05d}", "{n}", "site-a-{n:03}", "{n}-{n:x}"])
def test_it_accepts_id_patterns_using_only_n(pattern):
    validate_id_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "CS-",
        "CS-{}",
        "CS-{0}",
        "CS-{m}",
        "CS-{n}-{m}",
        "{n.real}",
        "{n:05s}",
        "CS:{n}",
        "CS-{n",
        "{n:.0}",
    ],
)
def test_it_rejects_id_patterns_that_cannot_number_stations(pattern):
    with pytest.raises(ValidationError):
        validate_id_pattern(pattern)


def template(**fields) -> StationTemplate:
    defaults = {"name": "Depot", "csms_url": "ws://csms.example:9000/ocpp"}
    return StationTemplate.objects.create(**defaults | fields)


def test_a_template_creates_numbered_stations_with_their_evses_and_connectors(pki):
    depot = template(
        id_pattern="DEPOT-{n:03d}",
        csms_url="wss://csms.example/ocpp",
        security_profile=3,
        ca_cert=pki.ca_cert,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
        vendor="ACME",
        model="Wallbox",
        firmware_version="2.1",
        evse_count=2,
        connectors_per_evse=2,
        connector_type="cCCS2",
        max_power_kw=Decimal("150"),
    )

    assert depot.create_stations(3, start=8) == 3

    stations = list(Station.objects.order_by("station_id"))
    assert [s.station_id for s in stations] == ["DEPOT-008", "DEPOT-009", "DEPOT-010"]
    first = stations[0]
    assert first.template == depot
    assert first.serial_number == "SN-DEPOT-008"
    assert (first.csms_url, first.security_profile, first.vendor, first.model) == (
        "wss://csms.example/ocpp",
        3,
        "ACME",
        "Wallbox",
    )
    assert first.client_key == pki.client_key
    assert first.enabled and not first.online and first.created_at is not None
    assert [(e.evse_id, e.max_power_kw) for e in first.evses.order_by("evse_id")] == [
        (1, Decimal("150")),
        (2, Decimal("150")),
    ]
    connectors = Connector.objects.filter(evse__station=first).order_by(
        "evse__evse_id", "connector_id"
    )
    assert [(c.evse.evse_id, c.connector_id, c.connector_type) for c in connectors] == [
        (1, 1, "cCCS2"),
        (1, 2, "cCCS2"),
        (2, 1, "cCCS2"),
        (2, 2, "cCCS2"),
    ]
    assert Connector.objects.count() == 12
    for s in stations:
        s.full_clean()


def test_a_template_creates_ten_thousand_stations_in_bulk(django_assert_max_num_queries):
    depot = template()

    # One INSERT per row would be 30,000 queries; batched inserts take about 300.
    with django_assert_max_num_queries(1000):
        assert depot.create_stations(10_000) == 10_000

    assert Station.objects.filter(template=depot).count() == 10_000
    assert Evse.objects.count() == 10_000
    assert Connector.objects.count() == 10_000
    assert Station.objects.filter(evses__connectors__connector_type="cType2").count() == 10_000
    assert set(Station.objects.values_list("station_id", flat=True)) == {
        f"CS-{n:05d}" for n in range(1, 10_001)
    }


def test_creating_stations_with_a_taken_id_names_it_and_creates_nothing(make_station):
    make_station("CS-00005")
    make_station("CS-00007")
    depot = template()

    with pytest.raises(ValidationError) as excinfo:
        depot.create_stations(10)

    assert "CS-00005, CS-00007" in excinfo.value.messages[0]
    assert Station.objects.count() == 2
    assert Evse.objects.count() == 2


def test_the_clash_message_stays_short_for_many_clashes():
    depot = template()
    depot.create_stations(50)
    with pytest.raises(ValidationError) as excinfo:
        depot.create_stations(50)
    assert "and 40 more" in excinfo.value.messages[0]


@pytest.mark.parametrize("count", [0, -1, MAX_STATIONS_PER_BATCH + 1])
def test_it_refuses_to_create_an_invalid_number_of_stations(count):
    with pytest.raises(ValidationError):
        template().create_stations(count)
    assert not Station.objects.exists()


def test_it_refuses_ids_that_outgrow_the_station_id_limit():
    depot = template(id_pattern="x" * 35 + "{n}")
    depot.create_stations(9, start=1)
    with pytest.raises(ValidationError, match="invalid station ids"):
        depot.create_stations(2, start=9)
    assert Station.objects.count() == 9


def test_an_invalid_template_creates_nothing():
    depot = template(security_profile=1)
    with pytest.raises(ValidationError) as excinfo:
        depot.create_stations(1)
    assert "password" in excinfo.value.message_dict
    assert not Station.objects.exists()


def test_long_station_ids_get_a_short_stable_serial_number():
    long_id = "x" * 36
    assert len(serial_number_for(long_id)) == 25
    assert serial_number_for(long_id) == serial_number_for(long_id)
    assert serial_number_for(long_id) != serial_number_for("y" * 36)


def test_deleting_a_template_keeps_its_stations():
    depot = template()
    depot.create_stations(2)
    depot.delete()
    assert list(Station.objects.values_list("template", flat=True)) == [None, None]


def test_the_template_rules_match_the_station_rules():
    errors = errors_of(StationTemplate(name="TLS", csms_url="ws://csms/", security_profile=2))
    assert set(errors) == {"csms_url", "password"}
