import gc
import tracemalloc

import pytest
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.messages import MessageType, get_validator

from stations.engine.config import ConnectorConfig, EvseConfig
from stations.engine.device_model.model import DeviceModel

EVSES = (
    EvseConfig(1, max_power_kw=22.0, connectors=(ConnectorConfig(1, "cType2"),)),
    EvseConfig(
        2,
        max_power_kw=7.4,
        phases=1,
        connectors=(ConnectorConfig(1, "sType2"), ConnectorConfig(2, "cCCS2")),
    ),
)
PASSWORD = "Sixteen-chars:OK|@"


def make_model(**kwargs) -> DeviceModel:
    options = {
        "vendor": "OpenFleet",
        "model": "SimCharger",
        "serial_number": "SN-1",
        "firmware_version": "1.0.0",
        "identity": "CP-1",
    }
    return DeviceModel(EVSES, **(options | kwargs))


def component(name, evse=None, connector=None) -> dict:
    result = {"name": name}
    if evse is not None:
        result["evse"] = {"id": evse}
        if connector is not None:
            result["evse"]["connector_id"] = connector
    return result


def get_one(model, comp, variable, instance=None, attribute_type=None) -> dict:
    item = {"component": comp, "variable": {"name": variable, "instance": instance}}
    if attribute_type is not None:
        item["attribute_type"] = attribute_type
    [result] = model.get_variables([item])
    return result


def set_one(model, comp, variable, value, instance=None, attribute_type=None) -> dict:
    item = {
        "component": comp,
        "variable": {"name": variable, "instance": instance},
        "attribute_value": value,
    }
    if attribute_type is not None:
        item["attribute_type"] = attribute_type
    [result] = model.set_variables([item])
    return result


def reported_names(report) -> set[tuple]:
    def where(item):
        evse = item["component"].get("evse", {})
        return (item["component"]["name"], evse.get("id"), evse.get("connector_id"))

    return {where(item) + (item["variable"]["name"],) for item in report}


def as_ocpp(payload: dict) -> dict:
    # What the ocpp library puts on the wire; the keys must survive the round trip.
    camel = snake_to_camel_case(payload)
    assert camel_to_snake_case(camel) == payload
    return camel


# -- GetVariables ---------------------------------------------------------------------------


def test_it_reads_a_known_variable():
    result = get_one(make_model(), component("OCPPCommCtrlr"), "HeartbeatInterval")

    assert result == {
        "attribute_status": "Accepted",
        "attribute_value": "300",
        "attribute_type": "Actual",
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
    }


def test_it_reads_a_variable_with_an_instance():
    result = get_one(
        make_model(), component("OCPPCommCtrlr"), "MessageAttempts", instance="TransactionEvent"
    )

    assert result["attribute_status"] == "Accepted"
    assert result["variable"] == {"name": "MessageAttempts", "instance": "TransactionEvent"}


def test_it_answers_unknown_component_for_a_component_the_station_lacks():
    result = get_one(make_model(), component("ISO15118Ctrlr"), "Enabled")

    assert result["attribute_status"] == "UnknownComponent"
    assert "attribute_value" not in result


def test_it_answers_unknown_variable_for_a_variable_the_component_lacks():
    result = get_one(make_model(), component("OCPPCommCtrlr"), "NoSuchVariable")

    assert result["attribute_status"] == "UnknownVariable"


def test_it_answers_unknown_variable_when_the_variable_instance_is_missing():
    result = get_one(make_model(), component("OCPPCommCtrlr"), "MessageAttempts")

    assert result["attribute_status"] == "UnknownVariable"


def test_it_answers_not_supported_attribute_type_for_max_set_on_heartbeat_interval():
    result = get_one(
        make_model(), component("OCPPCommCtrlr"), "HeartbeatInterval", attribute_type="MaxSet"
    )

    assert result["attribute_status"] == "NotSupportedAttributeType"
    assert result["attribute_type"] == "MaxSet"


def test_it_matches_component_and_variable_names_case_insensitively():
    result = get_one(make_model(), component("ocppcommctrlr"), "heartbeatinterval")

    assert result["attribute_status"] == "Accepted"
    assert result["component"] == {"name": "ocppcommctrlr"}


def test_it_reports_the_station_identity_and_configured_security_profile():
    model = make_model(security_profile=2)

    assert get_one(model, component("SecurityCtrlr"), "Identity")["attribute_value"] == "CP-1"
    profile = get_one(model, component("SecurityCtrlr"), "SecurityProfile")
    assert profile["attribute_value"] == "2"


# -- SetVariables ---------------------------------------------------------------------------


def test_it_accepts_a_new_value_and_reads_it_back():
    model = make_model()

    result = set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", "60")

    assert result == {
        "attribute_status": "Accepted",
        "attribute_type": "Actual",
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
    }
    assert model.get("OCPPCommCtrlr", "HeartbeatInterval") == "60"


def test_it_rejects_a_read_only_variable():
    model = make_model()

    result = set_one(model, component("SecurityCtrlr"), "SecurityProfile", "3")

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "ReadOnly"
    assert model.get("SecurityCtrlr", "SecurityProfile") == "0"


@pytest.mark.parametrize(("value", "reason"), [("0", "ValueTooLow"), ("86401", "ValueTooHigh")])
def test_it_rejects_an_integer_out_of_range(value, reason):
    model = make_model()

    result = set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", value)

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == reason
    assert model.get("OCPPCommCtrlr", "HeartbeatInterval") == "300"


@pytest.mark.parametrize("value", ["sixty", "1.5", "", "1e3", " 60"])
def test_it_rejects_a_value_that_is_not_an_integer(value):
    result = set_one(make_model(), component("OCPPCommCtrlr"), "HeartbeatInterval", value)

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "InvalidValue"


@pytest.mark.parametrize("value", ["True", "FALSE", "1", "0", "yes", ""])
def test_it_rejects_a_boolean_other_than_true_or_false(value):
    result = set_one(make_model(), component("AuthCtrlr"), "LocalPreAuthorize", value)

    assert result["attribute_status"] == "Rejected"


@pytest.mark.parametrize("value", ["true", "false"])
def test_it_accepts_true_and_false_for_a_boolean(value):
    model = make_model()

    result = set_one(model, component("AuthCtrlr"), "AuthorizeRemoteStart", value)

    assert result["attribute_status"] == "Accepted"
    assert model.get_bool("AuthCtrlr", "AuthorizeRemoteStart") is (value == "true")


def test_it_rejects_a_measurand_the_station_does_not_support():
    model = make_model()

    result = set_one(
        model,
        component("SampledDataCtrlr"),
        "TxUpdatedMeasurands",
        "Energy.Active.Import.Register,Frequency",
    )

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "InvalidValue"
    assert "Frequency" in result["attribute_status_info"]["additional_info"]
    assert "Power.Active.Import" in model.get_list("SampledDataCtrlr", "TxUpdatedMeasurands")


def test_it_accepts_a_subset_of_the_supported_measurands_without_spaces():
    model = make_model()

    result = set_one(model, component("SampledDataCtrlr"), "TxEndedMeasurands", "SoC, Voltage")

    assert result["attribute_status"] == "Accepted"
    assert model.get("SampledDataCtrlr", "TxEndedMeasurands") == "SoC,Voltage"


def test_it_accepts_an_empty_measurand_list():
    model = make_model()

    result = set_one(model, component("SampledDataCtrlr"), "TxStartedMeasurands", "")

    assert result["attribute_status"] == "Accepted"
    assert model.get_list("SampledDataCtrlr", "TxStartedMeasurands") == []


def test_it_rejects_a_tx_start_point_outside_the_supported_list():
    model = make_model()

    result = set_one(model, component("TxCtrlr"), "TxStartPoint", "ParkingBayOccupancy")

    assert result["attribute_status"] == "Rejected"
    assert model.get_list("TxCtrlr", "TxStartPoint") == ["PowerPathClosed"]


def test_it_accepts_a_tx_stop_point_from_the_supported_list():
    model = make_model()

    result = set_one(model, component("TxCtrlr"), "TxStopPoint", "EnergyTransfer,EVConnected")

    assert result["attribute_status"] == "Accepted"
    assert model.get_list("TxCtrlr", "TxStopPoint") == ["EnergyTransfer", "EVConnected"]


def test_it_rejects_a_list_member_given_twice():
    result = set_one(make_model(), component("TxCtrlr"), "TxStopPoint", "Authorized,Authorized")

    assert result["attribute_status"] == "Rejected"


def test_it_answers_reboot_required_and_stores_the_value_for_the_next_boot():
    changes, notified = [], []
    model = make_model(on_change=lambda key, value: changes.append((key, value)))
    model.add_listener(lambda *change: notified.append(change))

    first = set_one(model, component("OCPPCommCtrlr"), "NetworkConfigurationPriority", "2,1")
    again = set_one(model, component("OCPPCommCtrlr"), "NetworkConfigurationPriority", "2,1")

    assert first["attribute_status"] == "RebootRequired"
    assert first["attribute_status_info"]["reason_code"] == "NoError"
    assert again["attribute_status"] == "RebootRequired"
    assert model.get("OCPPCommCtrlr", "NetworkConfigurationPriority") == "2,1"
    assert changes == [("OCPPCommCtrlr/NetworkConfigurationPriority/Actual", "2,1")]
    assert notified == []


def test_it_calls_on_change_with_the_key_and_value_of_an_accepted_change():
    changes = []
    model = make_model(on_change=lambda key, value: changes.append((key, value)))

    set_one(model, component("OCPPCommCtrlr"), "MessageAttempts", "5", instance="TransactionEvent")

    assert changes == [("OCPPCommCtrlr/MessageAttempts[TransactionEvent]/Actual", "5")]


def test_it_tells_listeners_the_component_variable_and_value_of_an_accepted_change():
    notified = []
    model = make_model()
    model.add_listener(lambda *change: notified.append(change))

    set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", "45")

    assert notified == [("OCPPCommCtrlr", "HeartbeatInterval", "45")]


def test_writing_the_same_value_again_is_accepted_without_calling_on_change():
    changes, notified = [], []
    model = make_model(on_change=lambda key, value: changes.append((key, value)))
    model.add_listener(lambda *change: notified.append(change))

    result = set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", "300")

    assert result["attribute_status"] == "Accepted"
    assert changes == []
    assert notified == []


def test_it_does_not_call_on_change_for_a_rejected_value():
    changes = []
    model = make_model(on_change=lambda key, value: changes.append((key, value)))

    set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", "-1")

    assert changes == []


def test_overrides_restore_changed_values_in_a_new_device_model():
    saved = {}
    model = make_model(on_change=saved.__setitem__)
    set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", "42")
    set_one(model, component("TxCtrlr"), "TxStartPoint", "EVConnected,Authorized")
    set_one(model, component("SecurityCtrlr"), "BasicAuthPassword", PASSWORD)

    restarted = make_model(overrides=saved)

    assert restarted.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 42
    assert restarted.get_list("TxCtrlr", "TxStartPoint") == ["EVConnected", "Authorized"]
    assert restarted.get("SecurityCtrlr", "BasicAuthPassword") == PASSWORD


def test_it_ignores_overrides_for_variables_it_no_longer_has_or_values_it_rejects():
    model = make_model(
        overrides={
            "OCPPCommCtrlr/RetiredVariable/Actual": "1",
            "EVSE[9]/Power/MaxSet": "1000",
            "OCPPCommCtrlr/HeartbeatInterval/Actual": "not a number",
            "Availability/EVSE[1]": "Inoperative",
        }
    )

    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 300


# -- Write-only password --------------------------------------------------------------------


def test_the_basic_auth_password_cannot_be_read_by_the_csms():
    model = make_model()
    set_one(model, component("SecurityCtrlr"), "BasicAuthPassword", PASSWORD)

    result = get_one(model, component("SecurityCtrlr"), "BasicAuthPassword")

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "WriteOnly"
    assert "attribute_value" not in result


@pytest.mark.parametrize("password", ["a" * 16, "A1*-_=:+|@." + "x" * 29])
def test_it_accepts_a_password_of_16_to_40_allowed_characters(password):
    model = make_model()

    result = set_one(model, component("SecurityCtrlr"), "BasicAuthPassword", password)

    assert result["attribute_status"] == "Accepted"
    assert model.get("SecurityCtrlr", "BasicAuthPassword") == password


@pytest.mark.parametrize("password", ["a" * 15, "a" * 41, "sixteen chars ok", "sixteen-chars-ok!"])
def test_it_rejects_a_password_of_the_wrong_length_or_with_disallowed_characters(password):
    result = set_one(make_model(), component("SecurityCtrlr"), "BasicAuthPassword", password)

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "InvalidValue"


def test_the_basic_auth_password_is_never_in_a_report():
    model = make_model()
    set_one(model, component("SecurityCtrlr"), "BasicAuthPassword", PASSWORD)

    for base in ("FullInventory", "ConfigurationInventory"):
        [item] = [i for i in model.report(base) if i["variable"]["name"] == "BasicAuthPassword"]
        assert item["variable_attribute"] == [
            {"type": "Actual", "mutability": "WriteOnly", "persistent": True, "constant": False}
        ]
        assert PASSWORD not in repr(model.report(base))


# -- EVSEs and connectors -------------------------------------------------------------------


def test_it_reports_each_evse_power_max_set_as_its_rated_power_in_watts():
    model = make_model()

    first = get_one(model, component("EVSE", 1), "Power", attribute_type="MaxSet")
    second = get_one(model, component("EVSE", 2), "Power", attribute_type="MaxSet")

    assert first["attribute_value"] == "22000"
    assert second["attribute_value"] == "7400"
    assert second["component"] == {"name": "EVSE", "evse": {"id": 2}}


def test_it_rejects_a_csms_write_to_the_evse_power():
    result = set_one(make_model(), component("EVSE", 1), "Power", "1000", attribute_type="MaxSet")

    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "ReadOnly"


def test_it_addresses_connectors_by_evse_id_and_connector_id():
    model = make_model()

    ccs = get_one(model, component("Connector", 2, 2), "ConnectorType")
    phases = get_one(model, component("Connector", 2, 1), "SupplyPhases")

    assert ccs["attribute_value"] == "cCCS2"
    assert ccs["component"] == {"name": "Connector", "evse": {"id": 2, "connector_id": 2}}
    assert phases["attribute_value"] == "1"


@pytest.mark.parametrize(
    "comp",
    [
        component("EVSE", 3),
        component("EVSE"),
        component("Connector", 1, 2),
        component("Connector", 1),
        component("OCPPCommCtrlr", 1),
    ],
)
def test_it_answers_unknown_component_for_a_wrong_evse_or_connector_id(comp):
    result = get_one(make_model(), comp, "AvailabilityState")

    assert result["attribute_status"] == "UnknownComponent"


# -- Station-side access --------------------------------------------------------------------


def test_typed_helpers_read_the_defaults():
    model = make_model()

    assert model.get_int("SampledDataCtrlr", "TxUpdatedInterval") == 60
    assert model.get_list("SampledDataCtrlr", "TxStartedMeasurands") == [
        "Energy.Active.Import.Register"
    ]
    assert model.get_list("SampledDataCtrlr", "TxUpdatedMeasurands") == [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
        "Voltage",
        "SoC",
    ]
    assert model.get_bool("AuthCtrlr", "Enabled") is True
    assert model.get_int("EVSE", "Power", evse=1, attribute_type="MaxSet") == 22000
    assert model.get("ChargingStation", "NoSuchVariable") is None
    with pytest.raises(KeyError):
        model.get_int("ChargingStation", "NoSuchVariable")


def test_set_internal_bypasses_mutability_and_calls_on_change_only_when_persisting():
    changes = []
    model = make_model(on_change=lambda key, value: changes.append((key, value)))

    model.set_internal("Connector", "AvailabilityState", "Occupied", evse=2, connector=1)
    model.set_internal("OCPPCommCtrlr", "HeartbeatInterval", "120", persist=True)

    state = get_one(model, component("Connector", 2, 1), "AvailabilityState")
    assert state["attribute_value"] == "Occupied"
    assert changes == [("OCPPCommCtrlr/HeartbeatInterval/Actual", "120")]


def test_set_internal_refuses_a_variable_the_model_does_not_have():
    with pytest.raises(KeyError):
        make_model().set_internal("EVSE", "Power", "1", evse=7)


def test_keys_name_the_component_evse_connector_variable_instance_and_attribute():
    assert DeviceModel.key("EVSE", "Power", evse=1, attribute_type="MaxSet") == (
        "EVSE[1]/Power/MaxSet"
    )
    assert DeviceModel.key("Connector", "ConnectorType", evse=2, connector=1) == (
        "Connector[2,1]/ConnectorType/Actual"
    )
    assert DeviceModel.key(
        "OCPPCommCtrlr", "MessageAttempts", variable_instance="TransactionEvent"
    ) == ("OCPPCommCtrlr/MessageAttempts[TransactionEvent]/Actual")


def test_it_leaves_out_the_serial_number_when_the_station_has_none():
    model = make_model(serial_number=None)

    result = get_one(model, component("ChargingStation"), "SerialNumber")

    assert result["attribute_status"] == "UnknownVariable"
    assert (
        get_one(make_model(), component("ChargingStation"), "SerialNumber")["attribute_value"]
        == "SN-1"
    )


# -- Reports --------------------------------------------------------------------------------


def test_full_inventory_describes_every_variable_with_its_attributes_and_characteristics():
    report = make_model().report("FullInventory")

    names = reported_names(report)
    assert ("ChargingStation", None, None, "VendorName") in names
    assert ("EVSE", 2, None, "Power") in names
    assert ("Connector", 2, 2, "ConnectorType") in names
    assert ("DeviceDataCtrlr", None, None, "ItemsPerMessage") in names
    [power] = [
        i for i in report if i["variable"]["name"] == "Power" and i["component"]["evse"]["id"] == 1
    ]
    assert [a["type"] for a in power["variable_attribute"]] == ["Actual", "MaxSet"]
    assert power["variable_attribute"][1]["value"] == "22000"
    assert power["variable_characteristics"] == {
        "data_type": "decimal",
        "supports_monitoring": False,
        "unit": "W",
        "min_limit": 0,
        "max_limit": 22000,
    }
    [heartbeat] = [i for i in report if i["variable"]["name"] == "HeartbeatInterval"]
    assert heartbeat["variable_attribute"] == [
        {
            "type": "Actual",
            "value": "300",
            "mutability": "ReadWrite",
            "persistent": True,
            "constant": False,
        }
    ]
    assert heartbeat["variable_characteristics"]["unit"] == "s"


def test_full_inventory_lists_the_supported_measurands_of_a_member_list():
    report = make_model().report("FullInventory")

    [updated] = [i for i in report if i["variable"]["name"] == "TxUpdatedMeasurands"]
    assert updated["variable_characteristics"]["data_type"] == "MemberList"
    assert updated["variable_characteristics"]["values_list"] == (
        "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
    )


def test_configuration_inventory_holds_only_writable_variables():
    report = make_model().report("ConfigurationInventory")

    mutabilities = {a["mutability"] for i in report for a in i["variable_attribute"]}
    assert mutabilities == {"ReadWrite", "WriteOnly"}
    names = {name for *_, name in reported_names(report)}
    assert {"HeartbeatInterval", "TxStartPoint", "BasicAuthPassword"} <= names
    assert "SecurityProfile" not in names


def test_summary_inventory_holds_the_availability_of_the_station_evses_and_connectors():
    report = make_model().report("SummaryInventory")

    expected = set()
    for where in [
        ("ChargingStation", None, None),
        ("EVSE", 1, None),
        ("EVSE", 2, None),
        ("Connector", 1, 1),
        ("Connector", 2, 1),
        ("Connector", 2, 2),
    ]:
        expected |= {where + ("AvailabilityState",), where + ("Available",)}
    assert reported_names(report) == expected


def test_a_report_shows_the_current_value():
    model = make_model()
    model.set_internal("EVSE", "AvailabilityState", "Unavailable", evse=1)

    report = model.report("SummaryInventory")

    [state] = [
        i
        for i in report
        if i["component"] == {"name": "EVSE", "evse": {"id": 1}}
        and i["variable"]["name"] == "AvailabilityState"
    ]
    assert state["variable_attribute"][0]["value"] == "Unavailable"


def test_an_unknown_report_base_gives_none():
    assert make_model().report("EverythingPlease") is None


# -- Many stations --------------------------------------------------------------------------


def test_models_with_the_same_layout_do_not_see_each_others_changes():
    first, second = make_model(identity="CP-1"), make_model(identity="CP-2")
    untouched = second.report("FullInventory")

    set_one(first, component("OCPPCommCtrlr"), "HeartbeatInterval", "42")
    set_one(first, component("TxCtrlr"), "TxStartPoint", "EVConnected")
    set_one(first, component("OCPPCommCtrlr"), "NetworkConfigurationPriority", "2,1")
    first.set_internal("Connector", "AvailabilityState", "Occupied", evse=2, connector=1)
    first.set_internal("EVSE", "Power", "7000", evse=1)

    assert second.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 300
    assert second.get_list("TxCtrlr", "TxStartPoint") == ["PowerPathClosed"]
    assert second.get("Connector", "AvailabilityState", evse=2, connector=1) == "Available"
    assert get_one(second, component("SecurityCtrlr"), "Identity")["attribute_value"] == "CP-2"
    assert second.report("FullInventory") == untouched
    # A write the other model already had still counts as a change for this one.
    again = set_one(second, component("OCPPCommCtrlr"), "NetworkConfigurationPriority", "2,1")
    assert again["attribute_status"] == "RebootRequired"
    assert first.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 42
    assert get_one(first, component("SecurityCtrlr"), "Identity")["attribute_value"] == "CP-1"


def test_overrides_and_listeners_belong_to_one_model():
    changes = []
    restored = make_model(overrides={"OCPPCommCtrlr/HeartbeatInterval/Actual": "42"})
    plain = make_model(on_change=lambda key, value: changes.append(key))
    restored.add_listener(lambda *change: changes.append(change))

    set_one(restored, component("AuthCtrlr"), "Enabled", "false")

    assert plain.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 300
    assert plain.get_bool("AuthCtrlr", "Enabled") is True
    assert changes == [("AuthCtrlr", "Enabled", "false")]


def test_models_with_different_evses_keep_their_own_ratings_and_connectors():
    small = DeviceModel(
        (EvseConfig(1, max_power_kw=11.0, connectors=(ConnectorConfig(1, "sType2"),)),),
        vendor="OpenFleet",
        model="SimCharger",
        serial_number=None,
        firmware_version="1.0.0",
    )
    large = make_model()

    assert small.get_int("EVSE", "Power", evse=1, attribute_type="MaxSet") == 11000
    assert large.get_int("EVSE", "Power", evse=1, attribute_type="MaxSet") == 22000
    assert small.get("Connector", "ConnectorType", evse=1, connector=1) == "sType2"
    assert small.get("EVSE", "Power", evse=2) is None
    assert large.get("ChargingStation", "SerialNumber") == "SN-1"


def test_typed_reads_follow_every_change_of_the_value():
    model = make_model()
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 300

    model.set_internal("OCPPCommCtrlr", "HeartbeatInterval", "120")
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 120
    set_one(model, component("OCPPCommCtrlr"), "HeartbeatInterval", "300")
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 300
    set_one(model, component("TxCtrlr"), "TxStopPoint", "EnergyTransfer")
    assert model.get_list("TxCtrlr", "TxStopPoint") == ["EnergyTransfer"]
    model.set_internal("TxCtrlr", "TxStopPoint", "EVConnected")
    assert model.get_list("TxCtrlr", "TxStopPoint") == ["EVConnected"]


def test_a_list_read_can_be_changed_by_the_caller_without_changing_the_model():
    model = make_model()

    model.get_list("TxCtrlr", "TxStopPoint").append("EnergyTransfer")

    assert model.get_list("TxCtrlr", "TxStopPoint") == ["EVConnected", "Authorized"]
    assert make_model().get_list("TxCtrlr", "TxStopPoint") == ["EVConnected", "Authorized"]


def test_station_side_reads_match_names_case_insensitively():
    model = make_model()

    assert model.get("ocppcommctrlr", "HEARTBEATINTERVAL") == "300"
    assert model.get_int("OCPPCommCtrlr", "MessageAttempts", variable_instance="transactionevent")
    assert model.get_bool("authctrlr", "enabled") is True
    model.set_internal("connector", "availabilitystate", "Faulted", evse=1, connector=1)
    assert model.get("Connector", "AvailabilityState", evse=1, connector=1) == "Faulted"


def test_a_model_needs_only_a_few_kilobytes_beyond_what_its_layout_shares():
    make_model()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        models = [make_model(identity=f"CP-{n}", security_profile=1) for n in range(200)]
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert len(models) == 200
    assert used / len(models) <= 6 * 1024


# -- Schema conformance ---------------------------------------------------------------------


def every_kind_of_get() -> list[dict]:
    return [
        {"component": component("OCPPCommCtrlr"), "variable": {"name": "HeartbeatInterval"}},
        {
            "component": component("EVSE", 1),
            "variable": {"name": "Power", "instance": None},
            "attribute_type": "MaxSet",
        },
        {"component": component("Connector", 2, 2), "variable": {"name": "ConnectorType"}},
        {"component": component("SecurityCtrlr"), "variable": {"name": "BasicAuthPassword"}},
        {"component": component("NoSuchCtrlr"), "variable": {"name": "Enabled"}},
        {"component": component("TxCtrlr"), "variable": {"name": "NoSuchVariable"}},
        {
            "component": component("OCPPCommCtrlr"),
            "variable": {"name": "HeartbeatInterval"},
            "attribute_type": "Target",
        },
        {"component": component("SampledDataCtrlr"), "variable": {"name": "TxUpdatedMeasurands"}},
    ]


def every_kind_of_set() -> list[dict]:
    def item(comp, variable, value, instance=None, attribute_type=None):
        result = {
            "component": comp,
            "variable": {"name": variable, "instance": instance},
            "attribute_value": value,
        }
        if attribute_type:
            result["attribute_type"] = attribute_type
        return result

    return [
        item(component("OCPPCommCtrlr"), "HeartbeatInterval", "90"),
        item(component("OCPPCommCtrlr"), "HeartbeatInterval", "0"),
        item(component("OCPPCommCtrlr"), "HeartbeatInterval", "soon"),
        item(component("SecurityCtrlr"), "SecurityProfile", "3"),
        item(component("OCPPCommCtrlr"), "NetworkConfigurationPriority", "3"),
        item(component("SampledDataCtrlr"), "TxUpdatedMeasurands", "SoC,Voltage"),
        item(component("SampledDataCtrlr"), "TxUpdatedMeasurands", "Frequency"),
        item(component("SecurityCtrlr"), "BasicAuthPassword", "x" * 500),
        item(component("NoSuchCtrlr"), "Enabled", "true"),
        item(component("TxCtrlr"), "NoSuchVariable", "true"),
        item(component("EVSE", 1), "Power", "1", attribute_type="MinSet"),
        item(component("EVSE", 9), "Power", "1"),
    ]


def test_get_variables_results_validate_against_the_get_variables_response_schema():
    results = make_model().get_variables(every_kind_of_get())

    assert {r["attribute_status"] for r in results} == {
        "Accepted",
        "Rejected",
        "UnknownComponent",
        "UnknownVariable",
        "NotSupportedAttributeType",
    }
    validator = get_validator(MessageType.CallResult, "GetVariables", "2.0.1")
    validator.validate(as_ocpp({"get_variable_result": results}))


def test_set_variables_results_validate_against_the_set_variables_response_schema():
    results = make_model().set_variables(every_kind_of_set())

    assert {r["attribute_status"] for r in results} == {
        "Accepted",
        "Rejected",
        "UnknownComponent",
        "UnknownVariable",
        "NotSupportedAttributeType",
        "RebootRequired",
    }
    validator = get_validator(MessageType.CallResult, "SetVariables", "2.0.1")
    validator.validate(as_ocpp({"set_variable_result": results}))


@pytest.mark.parametrize("base", ["FullInventory", "ConfigurationInventory", "SummaryInventory"])
def test_every_report_validates_against_the_notify_report_request_schema(base):
    model = make_model(serial_number=None)
    model.set_variables(every_kind_of_set())

    payload = {
        "request_id": 1,
        "generated_at": "2026-01-01T00:00:00Z",
        "seq_no": 0,
        "report_data": model.report(base),
    }

    get_validator(MessageType.Call, "NotifyReport", "2.0.1").validate(as_ocpp(payload))
