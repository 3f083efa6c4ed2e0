"""The station's OCPP 2.0.1 device model: components, variables and their attributes.

The variable definitions, and their binding to the station's EVSEs and connectors, live in
the catalog; this module holds the current values and answers GetVariables,
SetVariables and GetBaseReport. Dicts use the snake_case keys the ocpp library hands to and takes
from handlers.

Values are strings, as OCPP carries them. Component and variable names match
case-insensitively, as Part 2 requires. A value set on a reboot-required variable is stored and
persisted at once (so it is read back and survives the reboot) and answered with
RebootRequired; the engine applies it at its next boot.

Everything but the values lives in a Layout shared by all stations with the same EVSEs and
connectors; a DeviceModel holds only the values that differ from its layout's defaults, so that
one process can host thousands of stations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from stations.engine.config import EvseConfig
from stations.engine.device_model.catalog import (
    ACTUAL,
    READ_ONLY,
    WRITE_ONLY,
    BoundVariable,
    ValueRejected,
    VariableSpec,
    attribute_key,
    check_value,
    component_key,
    station_layout,
    variable_key,
)

ACCEPTED = "Accepted"
REJECTED = "Rejected"
REBOOT_REQUIRED = "RebootRequired"

_SUMMARY_COMPONENTS = {"ChargingStation", "EVSE", "Connector"}
_SUMMARY_VARIABLES = {"AvailabilityState", "Available"}
# StatusInfoType.additionalInfo maxLength.
_MAX_INFO = 512
_NOTHING_PENDING: frozenset[int] = frozenset()


class _Refusal(Exception):
    """Why one GetVariables/SetVariables item is not Accepted."""

    def __init__(self, status: str, reason_code: str, additional_info: str):
        super().__init__(additional_info)
        self.status = status
        self.status_info = {
            "reason_code": reason_code,
            "additional_info": additional_info[:_MAX_INFO],
        }


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
        facts = (model, vendor, serial_number, firmware_version, identity, str(security_profile))
        self._layout = station_layout(evses, facts)
        # Slot -> value, only where it differs from the layout's default.
        self._values: dict[int, str] = {}
        # Slot -> int or tuple parsed from _values[slot]; dropped whenever the value changes.
        self._parsed: dict[int, object] = {}
        self._pending_reboot = _NOTHING_PENDING
        self._on_change = on_change
        self._listeners: list[Callable[[str, str, str], None]] = []
        for slot, fact in zip(self._layout.fact_slots, facts, strict=True):
            if fact and slot is not None:  # an empty fact leaves the catalog default
                self._put(slot, fact)
        self._apply_overrides(overrides or {})

    def _apply_overrides(self, overrides: Mapping[str, str]) -> None:
        layout = self._layout
        for key, value in overrides.items():
            slot = layout.by_key.get(key.lower())
            if slot is None:
                continue  # the variable left the model since the value was saved
            try:
                self._put(slot, check_value(layout.specs[slot], value))
            except ValueRejected:
                continue  # the model no longer accepts this value; keep the default

    # -- OCPP ----------------------------------------------------------------------------

    key = staticmethod(attribute_key)

    def get_variables(self, get_variable_data: list[dict]) -> list[dict]:
        """get_variable_result items, one per requested item, in order."""
        return [self._answer(item, self._read) for item in get_variable_data]

    def set_variables(self, set_variable_data: list[dict]) -> list[dict]:
        """set_variable_result items, one per requested item, in order."""
        return [self._answer(item, self._write) for item in set_variable_data]

    def report(self, report_base: str) -> list[dict] | None:
        """report_data items for GetBaseReport, or None for a report base not supported."""
        wanted = {
            "FullInventory": lambda spec: True,
            "ConfigurationInventory": lambda spec: spec.mutability != READ_ONLY,
            "SummaryInventory": _in_summary,
        }.get(report_base)
        if wanted is None:
            return None
        bounds = self._layout.variables.values()
        return [self._report_data(bound) for bound in bounds if wanted(bound.spec)]

    def _answer(self, item: dict, act: Callable[[BoundVariable, str, dict], dict]) -> dict:
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

    def _read(self, bound: BoundVariable, attribute_type: str, item: dict) -> dict:
        if bound.spec.mutability == WRITE_ONLY:
            raise _Refusal(REJECTED, "WriteOnly", "This variable can only be written")
        value = self._value(bound.slots[attribute_type])
        return {"attribute_status": ACCEPTED, "attribute_value": value}

    def _write(self, bound: BoundVariable, attribute_type: str, item: dict) -> dict:
        if bound.spec.mutability == READ_ONLY:
            raise _Refusal(REJECTED, "ReadOnly", "This variable can only be read")
        try:
            value = check_value(bound.spec, item["attribute_value"])
        except ValueRejected as rejected:
            raise _Refusal(REJECTED, rejected.reason_code, rejected.additional_info) from None
        if self._store(bound, attribute_type, value) == ACCEPTED:
            return {"attribute_status": ACCEPTED}
        info = {"reason_code": "NoError", "additional_info": "Takes effect after a reboot"}
        return {"attribute_status": REBOOT_REQUIRED, "attribute_status_info": info}

    def _find(self, item: dict, attribute_type: str) -> BoundVariable:
        component, requested = item["component"], item["variable"]
        evse = component.get("evse") or {}
        where = component_key(
            component["name"], component.get("instance"), evse.get("id"), evse.get("connector_id")
        )
        if where not in self._layout.components:
            raise _Refusal("UnknownComponent", "NotFound", "No such component on this station")
        what = variable_key(requested["name"], requested.get("instance"))
        bound = self._layout.variables.get(where + what)
        if bound is None:
            raise _Refusal("UnknownVariable", "NotFound", "No such variable on this component")
        if attribute_type not in bound.spec.attributes:
            raise _Refusal(
                "NotSupportedAttributeType",
                "UnsupportedParam",
                f"Supported attribute types: {', '.join(bound.spec.attributes)}",
            )
        return bound

    def _store(self, bound: BoundVariable, attribute_type: str, value: str) -> str:
        slot = bound.slots[attribute_type]
        key = self._layout.keys[slot]
        changed = self._value(slot) != value
        if changed:
            self._put(slot, value)
            if self._on_change is not None:
                self._on_change(key, value)
        if bound.spec.reboot_required and (changed or slot in self._pending_reboot):
            self._pending_reboot = self._pending_reboot | {slot}
            return REBOOT_REQUIRED
        if changed:
            for listener in self._listeners:
                listener(bound.spec.component, bound.spec.name, value)
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
        where = (component, variable, evse, connector, variable_instance, attribute_type)
        return self._current(where)

    def get_int(
        self,
        component: str,
        variable: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        variable_instance: str | None = None,
        attribute_type: str = ACTUAL,
    ) -> int:
        where = (component, variable, evse, connector, variable_instance, attribute_type)
        layout = self._layout
        slot = layout.slots.get(where)
        if slot is None:
            return int(self._require(where))
        parsed = self._parsed if slot in self._values else layout.parsed
        number = parsed.get(slot)
        if number.__class__ is not int:
            number = parsed[slot] = int(self._require(where))
        return number

    def get_bool(
        self,
        component: str,
        variable: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        variable_instance: str | None = None,
        attribute_type: str = ACTUAL,
    ) -> bool:
        where = (component, variable, evse, connector, variable_instance, attribute_type)
        slot = self._layout.slots.get(where)
        if slot is not None and slot not in self._values:
            return self._layout.defaults[slot] == "true"
        return self._require(where) == "true"

    def get_list(
        self,
        component: str,
        variable: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        variable_instance: str | None = None,
        attribute_type: str = ACTUAL,
    ) -> list[str]:
        where = (component, variable, evse, connector, variable_instance, attribute_type)
        layout = self._layout
        slot = layout.slots.get(where)
        if slot is None:
            return list(_members(self._require(where)))
        parsed = self._parsed if slot in self._values else layout.parsed
        members = parsed.get(slot)
        if members.__class__ is not tuple:
            members = parsed[slot] = _members(self._require(where))
        # A fresh list each time, so a caller that changes it changes nothing here.
        return list(members)

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
        where = (component, variable, evse, connector, variable_instance, attribute_type)
        slot = self._slot(where)
        if slot is None:
            raise KeyError(_key(where))
        if self._value(slot) == value:
            return
        self._put(slot, value)
        if persist and self._on_change is not None:
            self._on_change(self._layout.keys[slot], value)

    def add_listener(self, callback: Callable[[str, str, str], None]) -> None:
        """Call callback(component, variable, value) after each change a CSMS makes.

        A RebootRequired change is not announced: it only takes effect at the next boot.
        """
        self._listeners.append(callback)

    # -- values --------------------------------------------------------------------------

    def _slot(self, where: tuple) -> int | None:
        slot = self._layout.slots.get(where)
        if slot is not None:
            return slot
        component, variable, evse, connector, instance, attribute_type = where
        path = component_key(component, None, evse, connector) + variable_key(variable, instance)
        bound = self._layout.variables.get(path)
        return None if bound is None else bound.slots.get(attribute_type)

    def _value(self, slot: int) -> str:
        values = self._values
        return values[slot] if slot in values else self._layout.defaults[slot]

    def _current(self, where: tuple) -> str | None:
        slot = self._slot(where)
        return None if slot is None else self._value(slot)

    def _require(self, where: tuple) -> str:
        value = self._current(where)
        if value is None:
            raise KeyError(_key(where))
        return value

    def _put(self, slot: int, value: str) -> None:
        # A value back at its default is dropped, so a model stays as small as its changes.
        if value == self._layout.defaults[slot]:
            self._values.pop(slot, None)
        else:
            self._values[slot] = value
        self._parsed.pop(slot, None)

    def _report_data(self, bound: BoundVariable) -> dict:
        spec = bound.spec
        attributes = []
        for attribute_type in spec.attributes:
            attribute: dict = {"type": attribute_type}
            if spec.mutability != WRITE_ONLY:
                attribute["value"] = self._value(bound.slots[attribute_type])
            attribute.update(
                mutability=spec.mutability, persistent=spec.persistent, constant=spec.constant
            )
            attributes.append(attribute)
        component: dict = {"name": spec.component}
        if bound.evse is not None:
            component["evse"] = {"id": bound.evse}
            if bound.connector is not None:
                component["evse"]["connector_id"] = bound.connector
        variable = {"name": spec.name}
        if spec.instance is not None:
            variable["instance"] = spec.instance
        return {
            "component": component,
            "variable": variable,
            "variable_attribute": attributes,
            "variable_characteristics": _characteristics(spec),
        }


# -- helpers ---------------------------------------------------------------------------------


def _key(where: tuple) -> str:
    component, variable, evse, connector, instance, attribute_type = where
    return attribute_key(
        component,
        variable,
        evse=evse,
        connector=connector,
        variable_instance=instance,
        attribute_type=attribute_type,
    )


def _members(value: str) -> tuple[str, ...]:
    return tuple(member.strip() for member in value.split(",") if member.strip())


def _without_none(data):
    # Requests may carry explicit None for optional fields; the schemas allow only absence.
    if isinstance(data, Mapping):
        return {key: _without_none(value) for key, value in data.items() if value is not None}
    return data


def _in_summary(spec: VariableSpec) -> bool:
    return spec.component in _SUMMARY_COMPONENTS and spec.name in _SUMMARY_VARIABLES


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
