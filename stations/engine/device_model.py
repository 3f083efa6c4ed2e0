"""The station's OCPP 2.0.1 device model: components, variables and their attributes.

The variable definitions live in device_model_catalog; this module binds them to the station's
EVSEs and connectors, holds the current values and answers GetVariables, SetVariables and
GetBaseReport. Dicts use the snake_case keys the ocpp library hands to and takes from handlers.

Values are strings, as OCPP carries them. Component and variable names match
case-insensitively, as Part 2 requires. A value set on a reboot-required variable is stored and
persisted at once (so it is read back and survives the reboot) and answered with
RebootRequired; the engine applies it at its next boot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from stations.engine.config import EvseConfig
from stations.engine.device_model_catalog import (
    ACTUAL,
    CONNECTOR_VARIABLES,
    EVSE_VARIABLES,
    MAX_SET,
    READ_ONLY,
    STATION_VARIABLES,
    WRITE_ONLY,
    ValueRejected,
    VariableSpec,
    check_value,
)

ACCEPTED = "Accepted"
REJECTED = "Rejected"
REBOOT_REQUIRED = "RebootRequired"

_SUMMARY_COMPONENTS = {"ChargingStation", "EVSE", "Connector"}
_SUMMARY_VARIABLES = {"AvailabilityState", "Available"}
# StatusInfoType.additionalInfo maxLength.
_MAX_INFO = 512


class _Refusal(Exception):
    """Why one GetVariables/SetVariables item is not Accepted."""

    def __init__(self, status: str, reason_code: str, additional_info: str):
        super().__init__(additional_info)
        self.status = status
        self.status_info = {
            "reason_code": reason_code,
            "additional_info": additional_info[:_MAX_INFO],
        }


@dataclass
class _Variable:
    """A catalog variable bound to one component (and EVSE/connector), with its values."""

    spec: VariableSpec
    evse: int | None = None
    connector: int | None = None
    values: dict[str, str] = field(default_factory=dict)

    @property
    def component(self) -> dict:
        component: dict = {"name": self.spec.component}
        if self.evse is not None:
            component["evse"] = {"id": self.evse}
            if self.connector is not None:
                component["evse"]["connector_id"] = self.connector
        return component

    @property
    def variable(self) -> dict:
        variable = {"name": self.spec.name}
        if self.spec.instance is not None:
            variable["instance"] = self.spec.instance
        return variable

    @property
    def where(self) -> tuple:
        return _where(self.spec.component, None, self.evse, self.connector)

    def key(self, attribute_type: str = ACTUAL) -> str:
        return DeviceModel.key(
            self.spec.component,
            self.spec.name,
            evse=self.evse,
            connector=self.connector,
            variable_instance=self.spec.instance,
            attribute_type=attribute_type,
        )


class DeviceModel:
    def __init__(
        self,
        evses: Sequence[EvseConfig],
        *,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str,
        security_profile: int = 0,
        identity: str = "",
        overrides: Mapping[str, str] | None = None,
        on_change: Callable[[str, str], None] | None = None,
    ):
        self._on_change = on_change
        self._listeners: list[Callable[[str, str, str], None]] = []
        self._variables: dict[tuple, _Variable] = {}
        self._components: set[tuple] = set()
        self._by_key: dict[str, tuple[_Variable, str]] = {}
        self._pending_reboot: set[str] = set()

        facts = {
            self.key("ChargingStation", "Model"): model,
            self.key("ChargingStation", "VendorName"): vendor,
            self.key("ChargingStation", "SerialNumber"): serial_number,
            self.key("ChargingStation", "FirmwareVersion"): firmware_version,
            self.key("ChargingStation", "SupplyPhases"): str(
                max((evse.phases for evse in evses), default=0)
            ),
            self.key("SecurityCtrlr", "Identity"): identity,
            self.key("SecurityCtrlr", "SecurityProfile"): str(security_profile),
        }
        for spec in STATION_VARIABLES:
            if facts.get(self.key(spec.component, spec.name), "") is None:
                continue  # the station has no such value, e.g. no serial number
            self._add(_Variable(spec), facts)
        for evse in evses:
            facts.update(_evse_facts(evse))
            for spec in EVSE_VARIABLES:
                self._add(_Variable(_rated(spec, evse), evse.evse_id), facts)
            for connector in evse.connectors:
                for spec in CONNECTOR_VARIABLES:
                    self._add(_Variable(spec, evse.evse_id, connector.connector_id), facts)
        self._apply_overrides(overrides or {})

    def _add(self, variable: _Variable, facts: Mapping[str, str | None]) -> None:
        # A fact (a value taken from the station's config) replaces the catalog default.
        variable.values = {
            attribute: facts.get(variable.key(attribute)) or variable.spec.default
            for attribute in variable.spec.attributes
        }
        what = _what(variable.spec.name, variable.spec.instance)
        self._variables[variable.where + what] = variable
        self._components.add(variable.where)
        for attribute in variable.spec.attributes:
            self._by_key[variable.key(attribute).lower()] = (variable, attribute)

    def _apply_overrides(self, overrides: Mapping[str, str]) -> None:
        for key, value in overrides.items():
            target = self._by_key.get(key.lower())
            if target is None:
                continue  # the variable left the model since the value was saved
            variable, attribute = target
            try:
                variable.values[attribute] = check_value(variable.spec, value)
            except ValueRejected:
                continue  # the model no longer accepts this value; keep the default

    # -- OCPP ----------------------------------------------------------------------------

    @staticmethod
    def key(
        component: str,
        variable: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        component_instance: str | None = None,
        variable_instance: str | None = None,
        attribute_type: str = ACTUAL,
    ) -> str:
        """A stable name for one attribute, e.g. "Connector[1,2]/ConnectorType/Actual"."""
        where = component if component_instance is None else f"{component}({component_instance})"
        if evse is not None:
            where += f"[{evse}]" if connector is None else f"[{evse},{connector}]"
        what = variable if variable_instance is None else f"{variable}[{variable_instance}]"
        return f"{where}/{what}/{attribute_type}"

    def get_variables(self, get_variable_data: list[dict]) -> list[dict]:
        """get_variable_result items, one per requested item, in order."""
        return [self._answer(item, self._read) for item in get_variable_data]

    def set_variables(self, set_variable_data: list[dict]) -> list[dict]:
        """set_variable_result items, one per requested item, in order."""
        return [self._answer(item, self._write) for item in set_variable_data]

    def report(self, report_base: str) -> list[dict] | None:
        """report_data items for GetBaseReport, or None for a report base not supported."""
        wanted = {
            "FullInventory": lambda variable: True,
            "ConfigurationInventory": lambda variable: variable.spec.mutability != READ_ONLY,
            "SummaryInventory": _in_summary,
        }.get(report_base)
        if wanted is None:
            return None
        return [_report_data(variable) for variable in self._variables.values() if wanted(variable)]

    def _answer(self, item: dict, act: Callable[[_Variable, str, dict], dict]) -> dict:
        attribute_type = item.get("attribute_type") or ACTUAL
        try:
            outcome = act(self._find(item, attribute_type), attribute_type, item)
        except _Refusal as refusal:
            outcome = {
                "attribute_status": refusal.status,
                "attribute_status_info": refusal.status_info,
            }
        return {
            **outcome,
            "attribute_type": attribute_type,
            "component": _without_none(item["component"]),
            "variable": _without_none(item["variable"]),
        }

    def _read(self, variable: _Variable, attribute_type: str, item: dict) -> dict:
        if variable.spec.mutability == WRITE_ONLY:
            raise _Refusal(REJECTED, "WriteOnly", "This variable can only be written")
        return {"attribute_status": ACCEPTED, "attribute_value": variable.values[attribute_type]}

    def _write(self, variable: _Variable, attribute_type: str, item: dict) -> dict:
        if variable.spec.mutability == READ_ONLY:
            raise _Refusal(REJECTED, "ReadOnly", "This variable can only be read")
        try:
            value = check_value(variable.spec, item["attribute_value"])
        except ValueRejected as rejected:
            raise _Refusal(REJECTED, rejected.reason_code, rejected.additional_info) from None
        if self._store(variable, attribute_type, value) == ACCEPTED:
            return {"attribute_status": ACCEPTED}
        info = {"reason_code": "NoError", "additional_info": "Takes effect after a reboot"}
        return {"attribute_status": REBOOT_REQUIRED, "attribute_status_info": info}

    def _find(self, item: dict, attribute_type: str) -> _Variable:
        component, requested = item["component"], item["variable"]
        evse = component.get("evse") or {}
        where = _where(
            component["name"], component.get("instance"), evse.get("id"), evse.get("connector_id")
        )
        if where not in self._components:
            raise _Refusal("UnknownComponent", "NotFound", "No such component on this station")
        variable = self._variables.get(where + _what(requested["name"], requested.get("instance")))
        if variable is None:
            raise _Refusal("UnknownVariable", "NotFound", "No such variable on this component")
        if attribute_type not in variable.spec.attributes:
            raise _Refusal(
                "NotSupportedAttributeType",
                "UnsupportedParam",
                f"Supported attribute types: {', '.join(variable.spec.attributes)}",
            )
        return variable

    def _store(self, variable: _Variable, attribute_type: str, value: str) -> str:
        key = variable.key(attribute_type)
        changed = variable.values[attribute_type] != value
        if changed:
            variable.values[attribute_type] = value
            if self._on_change is not None:
                self._on_change(key, value)
        if variable.spec.reboot_required and (changed or key in self._pending_reboot):
            self._pending_reboot.add(key)
            return REBOOT_REQUIRED
        if changed:
            for listener in self._listeners:
                listener(variable.spec.component, variable.spec.name, value)
        return ACCEPTED

    # -- station side --------------------------------------------------------------------

    def get(
        self,
        component: str,
        variable: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        variable_instance: str | None = None,
        attribute_type: str = ACTUAL,
    ) -> str | None:
        """The raw current value, whatever its mutability; None if there is no such attribute."""
        found = self._local(component, variable, evse, connector, variable_instance)
        return None if found is None else found.values.get(attribute_type)

    def get_int(self, component: str, variable: str, **where) -> int:
        return int(self._require(component, variable, **where))

    def get_bool(self, component: str, variable: str, **where) -> bool:
        return self._require(component, variable, **where) == "true"

    def get_list(self, component: str, variable: str, **where) -> list[str]:
        value = self._require(component, variable, **where)
        return [member.strip() for member in value.split(",") if member.strip()]

    def set_internal(
        self,
        component: str,
        variable: str,
        value: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        variable_instance: str | None = None,
        attribute_type: str = ACTUAL,
        persist: bool = False,
    ) -> None:
        """Update a value from the station itself, bypassing mutability and validation.

        Listeners are not called: they exist for changes made by the CSMS.
        """
        found = self._local(component, variable, evse, connector, variable_instance)
        if found is None or attribute_type not in found.values:
            raise KeyError(
                self.key(
                    component,
                    variable,
                    evse=evse,
                    connector=connector,
                    variable_instance=variable_instance,
                    attribute_type=attribute_type,
                )
            )
        changed = found.values[attribute_type] != value
        found.values[attribute_type] = value
        if persist and changed and self._on_change is not None:
            self._on_change(found.key(attribute_type), value)

    def add_listener(self, callback: Callable[[str, str, str], None]) -> None:
        """Call callback(component, variable, value) after each change a CSMS makes.

        A RebootRequired change is not announced: it only takes effect at the next boot.
        """
        self._listeners.append(callback)

    def _local(
        self,
        component: str,
        variable: str,
        evse: int | None,
        connector: int | None,
        variable_instance: str | None,
    ) -> _Variable | None:
        where = _where(component, None, evse, connector)
        return self._variables.get(where + _what(variable, variable_instance))

    def _require(self, component: str, variable: str, **where) -> str:
        value = self.get(component, variable, **where)
        if value is None:
            raise KeyError(self.key(component, variable, **where))
        return value


# -- helpers ---------------------------------------------------------------------------------


def _where(name: str, instance: str | None, evse: int | None, connector: int | None) -> tuple:
    return (name.lower(), (instance or "").lower(), evse, connector)


def _what(name: str, instance: str | None) -> tuple:
    return (name.lower(), (instance or "").lower())


def _evse_facts(evse: EvseConfig) -> dict[str, str]:
    key = DeviceModel.key
    facts = {
        key("EVSE", "Power", evse=evse.evse_id, attribute_type=MAX_SET): str(_rated_watts(evse)),
        key("EVSE", "SupplyPhases", evse=evse.evse_id): str(evse.phases),
    }
    for connector in evse.connectors:
        where = {"evse": evse.evse_id, "connector": connector.connector_id}
        facts[key("Connector", "ConnectorType", **where)] = connector.connector_type
        facts[key("Connector", "SupplyPhases", **where)] = str(evse.phases)
    return facts


def _rated_watts(evse: EvseConfig) -> float:
    watts = round(evse.max_power_kw * 1000, 3)
    return int(watts) if watts.is_integer() else watts


def _rated(spec: VariableSpec, evse: EvseConfig) -> VariableSpec:
    # Part 2 requires EVSE.Power's maxLimit to hold the power the EVSE can deliver.
    if spec.name != "Power":
        return spec
    return replace(spec, max_limit=_rated_watts(evse))


def _without_none(data):
    # Requests may carry explicit None for optional fields; the schemas allow only absence.
    if isinstance(data, Mapping):
        return {key: _without_none(value) for key, value in data.items() if value is not None}
    return data


def _in_summary(variable: _Variable) -> bool:
    return (
        variable.spec.component in _SUMMARY_COMPONENTS and variable.spec.name in _SUMMARY_VARIABLES
    )


def _report_data(variable: _Variable) -> dict:
    spec = variable.spec
    attributes = []
    for attribute_type in spec.attributes:
        attribute: dict = {"type": attribute_type}
        if spec.mutability != WRITE_ONLY:
            attribute["value"] = variable.values[attribute_type]
        attribute.update(
            mutability=spec.mutability, persistent=spec.persistent, constant=spec.constant
        )
        attributes.append(attribute)
    return {
        "component": variable.component,
        "variable": variable.variable,
        "variable_attribute": attributes,
        "variable_characteristics": _characteristics(spec),
    }


def _characteristics(spec: VariableSpec) -> dict:
    # Monitoring (SetVariableMonitoring) is not simulated, so no variable supports it.
    optional = {
        "unit": spec.unit,
        "min_limit": spec.min_limit,
        "max_limit": spec.max_limit,
        "values_list": ",".join(spec.values_list) or None,
    }
    present = {name: value for name, value in optional.items() if value is not None}
    return {"data_type": spec.data_type, "supports_monitoring": False, **present}
