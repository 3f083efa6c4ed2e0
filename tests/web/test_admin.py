import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from stations.models import Connector, DeviceModelValue, Evse, Station, StationTemplate

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/stations/station/add/"
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Hashing the admin user's password the real way costs 0.3 s per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def change_url(station) -> str:
    return reverse("admin:stations_station_change", args=[station.pk])


def inline_data(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def station_data(evses=None, **fields) -> dict:
    """What the add form posts for a valid profile 0 station with one EVSE."""
    if evses is None:
        evses = [{"evse_id": "1", "max_power_kw": "22", "phases": "3", "voltage": "230"}]
    data = {
        "station_id": "CS-1",
        "enabled": "on",
        "template": "",
        "csms_url": "ws://csms.example:9000/ocpp",
        "security_profile": "0",
        "password": "",
        "ca_cert": "",
        "client_cert": "",
        "client_key": "",
        "vendor": "OpenFleet",
        "model": "SimCharger",
        "serial_number": "",
        "firmware_version": "1.0.0",
        **inline_data("evses", evses),
        **inline_data("variable_values", []),
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def existing_station_data(station, **fields) -> dict:
    """What the change form posts for a station, keeping its EVSEs."""
    evses = [
        {
            "id": str(e.pk),
            "station": str(station.pk),
            "evse_id": str(e.evse_id),
            "max_power_kw": str(e.max_power_kw),
            "phases": str(e.phases),
            "voltage": str(e.voltage),
        }
        for e in station.evses.order_by("evse_id")
    ]
    values = [{"id": str(v.pk), "station": str(station.pk)} for v in station.variable_values.all()]
    return (
        station_data(
            station_id=station.station_id,
            csms_url=station.csms_url,
            security_profile=str(station.security_profile),
            **inline_data("evses", evses, initial=len(evses)),
            **inline_data("variable_values", values, initial=len(values)),
        )
        | fields
    )


def form_errors(response) -> dict:
    assert response.status_code == 200, "expected the form to be shown again with errors"
    return response.context["adminform"].form.errors


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- adding stations ------------------------------------------------------------------------


def test_a_superuser_adds_a_station_with_one_evse_and_a_default_connector(admin_client):
    response = admin_client.post(ADD_URL, station_data())

    assert response.status_code == 302
    station = Station.objects.get(station_id="CS-1")
    evse = station.evses.get()
    assert (evse.evse_id, evse.phases, evse.voltage) == (1, 3, 230)
    assert [(c.connector_id, c.connector_type) for c in evse.connectors.all()] == [(1, "cType2")]


@pytest.mark.parametrize(
    "url", ["http://csms.example.com/ocpp", "ws://", "wss:///ocpp", "garbage", "ws://a b/"]
)
def test_it_rejects_a_malformed_csms_url(admin_client, url):
    errors = form_errors(admin_client.post(ADD_URL, station_data(csms_url=url)))
    assert list(errors) == ["csms_url"]
    assert not Station.objects.exists()


def test_it_rejects_a_duplicate_station_id(admin_client, make_station):
    make_station("CS-1")
    errors = form_errors(admin_client.post(ADD_URL, station_data(station_id="CS-1")))
    assert "already exists" in errors["station_id"][0]


@pytest.mark.parametrize("station_id", ["CS:1", "CS/1", "CS 1", "x" * 37])
def test_it_rejects_an_invalid_station_id(admin_client, station_id):
    errors = form_errors(admin_client.post(ADD_URL, station_data(station_id=station_id)))
    assert list(errors) == ["station_id"]


@pytest.mark.parametrize("profile", ["2", "3"])
def test_it_rejects_a_ws_url_for_profile_2_and_3(admin_client, profile, pki):
    data = station_data(
        security_profile=profile,
        password=PASSWORD,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )
    errors = form_errors(admin_client.post(ADD_URL, data))
    assert list(errors) == ["csms_url"]
    assert "wss://" in errors["csms_url"][0]


def test_it_requires_a_client_certificate_and_key_for_profile_3(admin_client):
    data = station_data(security_profile="3", csms_url="wss://csms.example/ocpp")
    errors = form_errors(admin_client.post(ADD_URL, data))
    assert set(errors) == {"client_cert", "client_key"}


@pytest.mark.parametrize("profile", ["1", "2"])
def test_it_requires_a_password_for_profile_1_and_2(admin_client, profile):
    data = station_data(security_profile=profile, csms_url="wss://csms.example/ocpp")
    errors = form_errors(admin_client.post(ADD_URL, data))
    assert list(errors) == ["password"]


def test_it_rejects_a_password_shorter_than_16_characters(admin_client):
    data = station_data(security_profile="1", password="too-short")
    errors = form_errors(admin_client.post(ADD_URL, data))
    assert "16-40" in errors["password"][0]


def test_it_rejects_a_station_without_evses(admin_client):
    response = admin_client.post(ADD_URL, station_data(evses=[]))

    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == ["A station needs at least one EVSE."]
    assert b"A station needs at least one EVSE." in response.content
    assert not Station.objects.exists()


def test_it_rejects_two_evses_with_the_same_id(admin_client):
    evse = {"evse_id": "1", "max_power_kw": "22", "phases": "3", "voltage": "230"}
    response = admin_client.post(ADD_URL, station_data(evses=[evse, evse]))

    formset = response.context["inline_admin_formsets"][0].formset
    assert "duplicate" in str(formset.non_form_errors()).lower()
    assert not Station.objects.exists()


@pytest.mark.parametrize("field", ["ca_cert", "client_cert", "client_key"])
def test_it_rejects_malformed_pem_text(admin_client, field):
    data = station_data(**{field: "-----BEGIN CERTIFICATE-----\nnot base64\n"})
    errors = form_errors(admin_client.post(ADD_URL, data))
    assert list(errors) == [field]
    assert "Malformed PEM" in errors[field][0]


def test_it_saves_a_profile_3_station_with_certificates_pasted_from_a_browser(admin_client, pki):
    data = station_data(
        security_profile="3",
        csms_url="wss://csms.example/ocpp",
        ca_cert=pki.ca_cert.replace("\n", "\r\n"),
        client_cert=pki.client_cert,
        client_key=pki.client_key.replace("\n", "\r\n"),
    )
    assert admin_client.post(ADD_URL, data).status_code == 302

    station = Station.objects.get()
    assert (station.ca_cert, station.client_key) == (pki.ca_cert, pki.client_key)


# --- write-only secrets ---------------------------------------------------------------------


@pytest.fixture
def secure_station(make_station, pki):
    return make_station(
        security_profile=2,
        csms_url="wss://csms.example/ocpp",
        password=PASSWORD,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )


def key_body(pki) -> str:
    return pki.client_key.splitlines()[1]


def test_the_change_page_never_shows_the_password_or_private_key(admin_client, secure_station, pki):
    html = admin_client.get(change_url(secure_station)).content.decode()

    assert PASSWORD not in html
    assert key_body(pki) not in html
    assert '<input type="password" name="password"' in html
    assert "Leave blank to keep the current one." in html
    # The certificate is public and stays visible.
    assert pki.client_cert.splitlines()[1] in html


def test_a_blank_password_keeps_the_stored_one(admin_client, secure_station, pki):
    data = existing_station_data(secure_station, password="", client_key="")
    assert admin_client.post(change_url(secure_station), data).status_code == 302

    secure_station.refresh_from_db()
    assert (secure_station.password, secure_station.client_key) == (PASSWORD, pki.client_key)


def test_a_new_password_replaces_the_stored_one(admin_client, secure_station):
    data = existing_station_data(secure_station, password="another-good-password")
    assert admin_client.post(change_url(secure_station), data).status_code == 302

    secure_station.refresh_from_db()
    assert secure_station.password == "another-good-password"


def test_the_stored_password_and_key_can_be_removed(admin_client, secure_station):
    data = existing_station_data(
        secure_station,
        security_profile="0",
        csms_url="ws://csms.example/ocpp",
        clear_password="on",
        clear_client_key="on",
    )
    assert admin_client.post(change_url(secure_station), data).status_code == 302

    secure_station.refresh_from_db()
    assert (secure_station.password, secure_station.client_key) == ("", "")


def test_removing_the_password_of_a_basic_auth_station_is_refused(admin_client, secure_station):
    data = existing_station_data(secure_station, clear_password="on")
    errors = form_errors(admin_client.post(change_url(secure_station), data))
    assert list(errors) == ["password"]


def test_a_rejected_form_does_not_echo_a_new_password(admin_client, secure_station):
    data = existing_station_data(
        secure_station, password="a-brand-new-password", csms_url="http://wrong"
    )
    response = admin_client.post(change_url(secure_station), data)

    assert "csms_url" in form_errors(response)
    html = response.content.decode()
    assert "a-brand-new-password" not in html
    assert PASSWORD not in html


def test_a_view_only_user_sees_whether_secrets_are_set_but_not_their_values(
    client, secure_station, pki
):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_station", "view_evse"])
    )
    client.force_login(viewer)

    response = client.get(change_url(secure_station))

    html = response.content.decode()
    assert response.status_code == 200
    assert PASSWORD not in html
    assert key_body(pki) not in html
    assert html.count(">Set<") == 2


# --- station list ---------------------------------------------------------------------------


def test_the_station_list_shows_profile_state_and_evse_count(admin_client, make_station):
    make_station("CS-1", evses=2, security_profile=1, password=PASSWORD)
    make_station("CS-2")

    response = admin_client.get("/admin/stations/station/")

    rows = {s.station_id: s for s in response.context["cl"].result_list}
    assert (rows["CS-1"].evse_count, rows["CS-2"].evse_count) == (2, 1)
    html = response.content.decode()
    assert "1 – Basic auth" in html
    assert "ws://csms.example:9000/ocpp" in html


def test_the_station_list_searches_by_id(admin_client, make_station):
    make_station("DEPOT-A-1")
    make_station("DEPOT-B-1")

    response = admin_client.get("/admin/stations/station/", {"q": "b-1"})

    assert [s.station_id for s in response.context["cl"].result_list] == ["DEPOT-B-1"]


def test_the_station_list_filters_by_online_state(admin_client, make_station):
    make_station("CS-1", online=True)
    make_station("CS-2")

    response = admin_client.get("/admin/stations/station/", {"online__exact": "1"})

    assert [s.station_id for s in response.context["cl"].result_list] == ["CS-1"]


# --- device-model values --------------------------------------------------------------------


def test_device_model_values_are_shown_read_only_with_passwords_hidden(admin_client, make_station):
    station = make_station()
    DeviceModelValue.objects.create(
        station=station, key="OCPPCommCtrlr/HeartbeatInterval/Actual", value="345"
    )
    DeviceModelValue.objects.create(
        station=station, key="SecurityCtrlr/BasicAuthPassword/Actual", value="set-by-the-csms-1"
    )

    html = admin_client.get(change_url(station)).content.decode()

    assert "OCPPCommCtrlr/HeartbeatInterval/Actual" in html
    assert "345" in html
    assert "set-by-the-csms-1" not in html
    assert 'name="variable_values-0-value"' not in html
    assert 'name="variable_values-0-DELETE"' not in html


def test_saving_a_station_leaves_its_device_model_values_alone(admin_client, make_station):
    station = make_station()
    DeviceModelValue.objects.create(station=station, key="A/B/Actual", value="1")

    data = existing_station_data(station, vendor="Changed")
    assert admin_client.post(change_url(station), data).status_code == 302

    assert list(DeviceModelValue.objects.values_list("key", "value")) == [("A/B/Actual", "1")]


# --- EVSEs and connectors -------------------------------------------------------------------


def test_the_station_page_links_each_evse_to_its_connectors(admin_client, make_station):
    station = make_station()
    evse = station.evses.get()

    html = admin_client.get(change_url(station)).content.decode()

    assert reverse("admin:stations_evse_change", args=[evse.pk]) in html
    assert "1: cType2" in html


def test_the_last_evse_cannot_be_deleted(admin_client, make_station):
    station = make_station()
    data = existing_station_data(station)
    data["evses-0-DELETE"] = "on"

    response = admin_client.post(change_url(station), data)

    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == ["A station needs at least one EVSE."]
    assert station.evses.exists()


def connector_data(evse, connectors: list[dict], initial: int) -> dict:
    return {
        "max_power_kw": str(evse.max_power_kw),
        "phases": str(evse.phases),
        "voltage": str(evse.voltage),
        **inline_data("connectors", connectors, initial=initial),
    }


def test_connectors_are_edited_on_the_evse_page(admin_client, make_station):
    station = make_station()
    evse = station.evses.get()
    existing = evse.connectors.get()
    url = reverse("admin:stations_evse_change", args=[evse.pk])

    response = admin_client.post(
        url,
        connector_data(
            evse,
            [
                {"id": existing.pk, "evse": evse.pk, "connector_id": 1, "connector_type": "cCCS2"},
                {"evse": evse.pk, "connector_id": 2, "connector_type": "cG105"},
            ],
            initial=1,
        ),
    )

    assert response.status_code == 302
    assert response.url == change_url(station)
    assert list(evse.connectors.values_list("connector_id", "connector_type")) == [
        (1, "cCCS2"),
        (2, "cG105"),
    ]


def test_an_evse_keeps_at_least_one_connector(admin_client, make_station):
    evse = make_station().evses.get()
    connector = evse.connectors.get()
    url = reverse("admin:stations_evse_change", args=[evse.pk])
    row = {"id": connector.pk, "evse": evse.pk, "connector_id": "1", "DELETE": "on"}

    response = admin_client.post(url, connector_data(evse, [row], initial=1))

    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == ["An EVSE needs at least one connector."]
    assert Connector.objects.filter(pk=connector.pk).exists()


def test_it_rejects_a_connector_type_outside_ocpp_2_0_1(admin_client, make_station):
    evse = make_station().evses.get()
    connector = evse.connectors.get()
    url = reverse("admin:stations_evse_change", args=[evse.pk])
    row = {"id": connector.pk, "evse": evse.pk, "connector_id": "1", "connector_type": "cGBT"}

    response = admin_client.post(url, connector_data(evse, [row], initial=1))

    formset = response.context["inline_admin_formsets"][0].formset
    assert "connector_type" in formset.errors[0]


# --- templates ------------------------------------------------------------------------------

TEMPLATES_URL = "/admin/stations/stationtemplate/"


def template_data(**fields) -> dict:
    return {
        "name": "Depot",
        "id_pattern": "CS-{n:05d}",
        "csms_url": "ws://csms.example/ocpp",
        "security_profile": "0",
        "password": "",
        "ca_cert": "",
        "client_cert": "",
        "client_key": "",
        "vendor": "OpenFleet",
        "model": "SimCharger",
        "firmware_version": "1.0.0",
        "evse_count": "1",
        "connectors_per_evse": "1",
        "connector_type": "cType2",
        "max_power_kw": "22",
    } | fields


def test_a_template_is_added_through_the_admin(admin_client):
    response = admin_client.post(TEMPLATES_URL + "add/", template_data())
    assert response.status_code == 302
    assert StationTemplate.objects.get().id_pattern == "CS-{n:05d}"


@pytest.mark.parametrize("pattern", ["CS-{}", "CS-{m}", "CS:{n}", "CS-"])
def test_it_rejects_an_id_pattern_without_exactly_n(admin_client, pattern):
    response = admin_client.post(TEMPLATES_URL + "add/", template_data(id_pattern=pattern))
    assert list(form_errors(response)) == ["id_pattern"]


def test_it_rejects_a_template_with_zero_evses(admin_client):
    response = admin_client.post(TEMPLATES_URL + "add/", template_data(evse_count="0"))
    assert list(form_errors(response)) == ["evse_count"]


def test_the_template_page_never_shows_the_password(admin_client):
    depot = StationTemplate.objects.create(
        name="Depot", csms_url="ws://csms/", security_profile=1, password=PASSWORD
    )
    html = admin_client.get(reverse("admin:stations_stationtemplate_change", args=[depot.pk]))
    assert PASSWORD not in html.content.decode()


@pytest.fixture
def depot():
    return StationTemplate.objects.create(
        name="Depot", csms_url="ws://csms.example/ocpp", evse_count=2, connector_type="cCCS2"
    )


def run_action(client, template, **form):
    data = {"action": "create_stations", "_selected_action": [template.pk]}
    if form:
        data |= {"apply": "Create stations", **form}
    return client.post(TEMPLATES_URL, data)


def test_the_create_stations_action_asks_for_count_and_start(admin_client, depot):
    response = run_action(admin_client, depot)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="count"' in html
    assert 'name="start"' in html
    assert "CS-00001" in html
    assert response.context["form"]["start"].value() == 1
    assert not Station.objects.exists()


def test_the_suggested_start_follows_the_stations_already_created(admin_client, depot):
    depot.create_stations(3)
    response = run_action(admin_client, depot)
    assert response.context["form"]["start"].value() == 4


@pytest.mark.parametrize("count", ["0", "-5", "100001", "lots"])
def test_the_create_stations_action_rejects_an_invalid_count(admin_client, depot, count):
    response = run_action(admin_client, depot, count=count, start="1")

    assert response.status_code == 200
    assert "count" in response.context["form"].errors
    assert not Station.objects.exists()


def test_the_create_stations_action_creates_ten_thousand_stations(admin_client, depot):
    response = run_action(admin_client, depot, count="10000", start="1")

    assert response.status_code == 302
    assert response.url == f"/admin/stations/station/?template__id__exact={depot.pk}"
    assert messages_of(admin_client.get(response.url)) == ["Created 10,000 stations from “Depot”."]
    assert Station.objects.filter(template=depot).count() == 10_000
    assert Evse.objects.count() == 20_000
    assert Connector.objects.filter(connector_type="cCCS2").count() == 20_000
    assert Station.objects.filter(station_id="CS-10000").exists()


def test_the_create_stations_action_reports_clashing_ids_and_creates_nothing(
    admin_client, depot, make_station
):
    make_station("CS-00003")

    response = run_action(admin_client, depot, count="5", start="1")

    assert response.status_code == 200
    assert messages_of(response) == [
        "These station ids already exist: CS-00003. Nothing was created."
    ]
    assert list(Station.objects.values_list("station_id", flat=True)) == ["CS-00003"]


def test_the_create_stations_action_needs_exactly_one_template(admin_client, depot):
    other = StationTemplate.objects.create(name="Other", csms_url="ws://csms/")
    data = {"action": "create_stations", "_selected_action": [depot.pk, other.pk]}

    response = admin_client.post(TEMPLATES_URL, data, follow=True)

    assert messages_of(response) == ["Select exactly one template to create stations from."]
    assert not Station.objects.exists()


def test_users_who_cannot_add_stations_do_not_get_the_action(client, depot):
    editor = User.objects.create_user("editor", password="x", is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_stationtemplate", "change_stationtemplate"])
    )
    client.force_login(editor)

    response = run_action(client, depot, count="5", start="1")

    assert "create_stations" not in response.content.decode()
    assert not Station.objects.exists()
