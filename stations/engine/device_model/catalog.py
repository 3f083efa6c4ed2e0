"""The variables of the simulated station's device model, and the values each accepts.

Names, data types, units and mutability follow the standardized components and variables of
OCPP 2.0.1 Part 2 (Appendix "Referenced Components and Variables"). Defaults, limits and value
lists describe what this simulator supports. Where the spec leaves a variable's mutability to
the implementation, the choice is commented.

A Layout binds the tables to one set of EVSEs and connectors. Most stations of a fleet share a
few layouts, so each is built once and shared by every DeviceModel that has it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from stations.engine.config import EvseConfig

READ_ONLY = "ReadOnly"
READ_WRITE = "ReadWrite"
WRITE_ONLY = "WriteOnly"

ACTUAL = "Actual"
MAX_SET = "MaxSet"

# The measurands the simulated meter can produce; MemberList variables accept only these.
SUPPORTED_MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
)
# The transaction start/stop events the engine can detect.
TX_POINTS = ("EVConnected", "Authorized", "PowerPathClosed", "EnergyTransfer")
# ConnectorStatusEnumType, which the spec uses as AvailabilityState's value list.
AVAILABILITY_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
FILE_TRANSFER_PROTOCOLS = ("FTP", "FTPS", "HTTP", "HTTPS", "SFTP")
# passwordString (Part 2, primitive datatypes).
PASSWORD_PATTERN = r"[A-Za-z0-9*\-_=:+|@.]+"
# The authorization cache's and the local list's bounds (v201/auth_cache.py,
# v201/local_auth_list.py): the maxLimit of their Storage and Entries variables.
AUTH_CACHE_STORAGE_MAX = 4096
AUTH_CACHE_POLICIES = ("LRU", "LFU", "FIFO")
LOCAL_LIST_ENTRIES_MAX = 1000
LOCAL_LIST_STORAGE_MAX = 262144
LOCAL_LIST_ITEMS_PER_MESSAGE = 100
LOCAL_LIST_BYTES_PER_MESSAGE = 32768


@dataclass(frozen=True)
class VariableSpec:
    component: str
    name: str
    # DataEnumType: string, decimal, integer, dateTime, boolean, OptionList, SequenceList,
    # MemberList.
    data_type: str
    default: str = ""
    mutability: str = READ_WRITE
    instance: str | None = None
    unit: str | None = None
    # Numeric bounds for integer/decimal; length bounds for string.
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    # A regular expression a whole string value must match.
    pattern: str | None = None
    attributes: tuple[str, ...] = (ACTUAL,)
    # A changed value is stored at once but only takes effect after the next boot.
    reboot_required: bool = False
    # Reported in VariableAttribute: survives a reboot / never changes at runtime.
    persistent: bool = True
    constant: bool = False


class ValueRejected(ValueError):
    """A value a variable does not accept; reason_code is an OCPP ReasonCode."""

    def __init__(self, reason_code: str, additional_info: str):
        super().__init__(additional_info)
        self.reason_code = reason_code
        self.additional_info = additional_info


def check_value(spec: VariableSpec, value: object) -> str:
    """The value as it is stored, normalized; raises ValueRejected if spec does not accept it."""
    if not isinstance(value, str):
        raise ValueRejected("InvalidValue", "The value must be a string")
    return _CHECKS[spec.data_type](spec, value)


def _check_range(spec: VariableSpec, number: float) -> None:
    if spec.min_limit is not None and number < spec.min_limit:
        raise ValueRejected("ValueTooLow", f"Minimum is {spec.min_limit:g}")
    if spec.max_limit is not None and number > spec.max_limit:
        raise ValueRejected("ValueTooHigh", f"Maximum is {spec.max_limit:g}")


def _check_integer(spec: VariableSpec, value: str) -> str:
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ValueRejected("InvalidValue", "Expected an integer")
    _check_range(spec, int(value))
    return str(int(value))


def _check_decimal(spec: VariableSpec, value: str) -> str:
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", value):
        raise ValueRejected("InvalidValue", "Expected a decimal number")
    _check_range(spec, float(value))
    return value


def _check_boolean(spec: VariableSpec, value: str) -> str:
    if value not in ("true", "false"):
        raise ValueRejected("InvalidValue", 'Expected "true" or "false"')
    return value


def _check_date_time(spec: VariableSpec, value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueRejected("InvalidValue", "Expected an RFC 3339 date-time") from None
    return value


def _check_string(spec: VariableSpec, value: str) -> str:
    # For strings, Part 2 uses minLimit/maxLimit as bounds on the length.
    if spec.min_limit is not None and len(value) < spec.min_limit:
        raise ValueRejected("InvalidValue", f"At least {spec.min_limit:g} characters are needed")
    if spec.max_limit is not None and len(value) > spec.max_limit:
        raise ValueRejected("InvalidValue", f"At most {spec.max_limit:g} characters are allowed")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise ValueRejected("InvalidValue", "The value has characters that are not allowed")
    return value


def _check_option(spec: VariableSpec, value: str) -> str:
    if value not in spec.values_list:
        raise ValueRejected("InvalidValue", f"Expected one of {','.join(spec.values_list)}")
    return value


def _check_list(spec: VariableSpec, value: str) -> str:
    # An empty value is an empty list, e.g. no measurands at all.
    members = [member.strip() for member in value.split(",")] if value.strip() else []
    unsupported = [member for member in members if member not in spec.values_list]
    if unsupported:
        raise ValueRejected(
            "InvalidValue",
            f"Not supported: {','.join(unsupported)}; supported: {','.join(spec.values_list)}",
        )
    if len(set(members)) != len(members):
        raise ValueRejected("InvalidValue", "A member appears more than once")
    return ",".join(members)


_CHECKS: dict[str, Callable[[VariableSpec, str], str]] = {
    "integer": _check_integer,
    "decimal": _check_decimal,
    "boolean": _check_boolean,
    "dateTime": _check_date_time,
    "string": _check_string,
    "OptionList": _check_option,
    "MemberList": _check_list,
    "SequenceList": _check_list,
}


def _ro(component: str, name: str, data_type: str, default: str = "", **kw) -> VariableSpec:
    return VariableSpec(component, name, data_type, default, mutability=READ_ONLY, **kw)


def _rw(component: str, name: str, data_type: str, default: str, **kw) -> VariableSpec:
    return VariableSpec(component, name, data_type, default, mutability=READ_WRITE, **kw)


def _measurands(component: str, name: str, default: str) -> VariableSpec:
    return _rw(component, name, "MemberList", default, values_list=SUPPORTED_MEASURANDS)


# The tables keep one variable per entry, so they are laid out by hand.
# fmt: off
# Values marked "from the station" are filled in by DeviceModel from the station's config.
STATION_VARIABLES: tuple[VariableSpec, ...] = (
    # AvailabilityState is runtime status, set by the engine as connectors change state.
    _ro("ChargingStation", "AvailabilityState", "OptionList", "Available",
        values_list=AVAILABILITY_STATES, persistent=False),
    _ro("ChargingStation", "Available", "boolean", "true"),
    _ro("ChargingStation", "Model", "string", constant=True),  # from the station
    _ro("ChargingStation", "VendorName", "string", constant=True),  # from the station
    _ro("ChargingStation", "SerialNumber", "string", constant=True),  # from the station
    _ro("ChargingStation", "FirmwareVersion", "string"),  # from the station
    _ro("ChargingStation", "SupplyPhases", "integer", "3", min_limit=0, max_limit=3,
        constant=True),  # from the station
    _rw("OCPPCommCtrlr", "HeartbeatInterval", "integer", "300", unit="s",
        min_limit=1, max_limit=86400),
    # Part 2: configured through the network connection profile, hence read-only.
    _ro("OCPPCommCtrlr", "MessageTimeout", "integer", "30", instance="Default", unit="s"),
    _rw("OCPPCommCtrlr", "MessageAttempts", "integer", "3", instance="TransactionEvent",
        min_limit=1, max_limit=10),
    _rw("OCPPCommCtrlr", "MessageAttemptInterval", "integer", "60",
        instance="TransactionEvent", unit="s", min_limit=1, max_limit=3600),
    # Part 2 (B10): a new connection priority is used from the next boot. The values are the
    # configuration slots of the network profiles the station can hold.
    _rw("OCPPCommCtrlr", "NetworkConfigurationPriority", "SequenceList", "1",
        values_list=("1", "2", "3"), reboot_required=True),
    _rw("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "integer", "3", min_limit=1),
    _rw("OCPPCommCtrlr", "OfflineThreshold", "integer", "300", unit="s", min_limit=0),
    _rw("OCPPCommCtrlr", "ResetRetries", "integer", "2", min_limit=0),
    _rw("OCPPCommCtrlr", "RetryBackOffRandomRange", "integer", "10", unit="s", min_limit=0),
    _rw("OCPPCommCtrlr", "RetryBackOffRepeatTimes", "integer", "5", min_limit=0),
    _rw("OCPPCommCtrlr", "RetryBackOffWaitMinimum", "integer", "3", unit="s", min_limit=0),
    _rw("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", "boolean", "true"),
    # 0 turns client-side pings off; negative values are not allowed.
    _rw("OCPPCommCtrlr", "WebSocketPingInterval", "integer", "30", unit="s", min_limit=0),
    _ro("OCPPCommCtrlr", "FileTransferProtocols", "MemberList", "HTTP,HTTPS",
        values_list=FILE_TRANSFER_PROTOCOLS, constant=True),
    _rw("OCPPCommCtrlr", "QueueAllMessages", "boolean", "false"),
    _rw("TxCtrlr", "EVConnectionTimeOut", "integer", "120", unit="s", min_limit=1),
    _rw("TxCtrlr", "StopTxOnEVSideDisconnect", "boolean", "true"),
    _rw("TxCtrlr", "StopTxOnInvalidId", "boolean", "true"),
    _rw("TxCtrlr", "TxStartPoint", "MemberList", "PowerPathClosed", values_list=TX_POINTS),
    _rw("TxCtrlr", "TxStopPoint", "MemberList", "EVConnected,Authorized",
        values_list=TX_POINTS),
    _rw("TxCtrlr", "MaxEnergyOnInvalidId", "integer", "0", unit="Wh", min_limit=0),
    _rw("TxCtrlr", "TxBeforeAcceptedEnabled", "boolean", "false"),
    _rw("AuthCtrlr", "Enabled", "boolean", "true"),
    _rw("AuthCtrlr", "AuthorizeRemoteStart", "boolean", "false"),
    _rw("AuthCtrlr", "LocalAuthorizeOffline", "boolean", "true"),
    _rw("AuthCtrlr", "LocalPreAuthorize", "boolean", "false"),
    _rw("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "boolean", "false"),
    _rw("AuthCtrlr", "DisableRemoteAuthorization", "boolean", "false"),
    # C16: empty means no master pass group; a groupIdToken is an idToken (36 characters).
    _rw("AuthCtrlr", "MasterPassGroupId", "string", "", max_limit=36),
    # C10-C12. Off by default, so a load test's stations keep no idTokens unless asked to.
    _ro("AuthCacheCtrlr", "Available", "boolean", "true", constant=True),
    _rw("AuthCacheCtrlr", "Enabled", "boolean", "false"),
    _rw("AuthCacheCtrlr", "LifeTime", "integer", "86400", unit="s", min_limit=0),
    _rw("AuthCacheCtrlr", "Policy", "OptionList", "LRU", values_list=AUTH_CACHE_POLICIES),
    _ro("AuthCacheCtrlr", "Storage", "integer", "0", min_limit=0,
        max_limit=AUTH_CACHE_STORAGE_MAX, persistent=False),
    _rw("AuthCacheCtrlr", "DisablePostAuthorize", "boolean", "false"),
    # C13/C14, D01/D02.
    _ro("LocalAuthListCtrlr", "Available", "boolean", "true", constant=True),
    _rw("LocalAuthListCtrlr", "Enabled", "boolean", "true"),
    _ro("LocalAuthListCtrlr", "Entries", "integer", "0", min_limit=0,
        max_limit=LOCAL_LIST_ENTRIES_MAX, persistent=False),
    _ro("LocalAuthListCtrlr", "ItemsPerMessage", "integer", str(LOCAL_LIST_ITEMS_PER_MESSAGE),
        constant=True),
    _ro("LocalAuthListCtrlr", "BytesPerMessage", "integer", str(LOCAL_LIST_BYTES_PER_MESSAGE),
        constant=True),
    _ro("LocalAuthListCtrlr", "Storage", "integer", "0", min_limit=0,
        max_limit=LOCAL_LIST_STORAGE_MAX, persistent=False),
    _rw("LocalAuthListCtrlr", "DisablePostAuthorize", "boolean", "false"),
    _rw("SampledDataCtrlr", "Enabled", "boolean", "true"),
    _measurands("SampledDataCtrlr", "TxStartedMeasurands", "Energy.Active.Import.Register"),
    _measurands("SampledDataCtrlr", "TxUpdatedMeasurands", ",".join(SUPPORTED_MEASURANDS)),
    _measurands("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register"),
    # 0 means no samples of that kind.
    _rw("SampledDataCtrlr", "TxUpdatedInterval", "integer", "60", unit="s", min_limit=0),
    _rw("SampledDataCtrlr", "TxEndedInterval", "integer", "60", unit="s", min_limit=0),
    _rw("SampledDataCtrlr", "SignReadings", "boolean", "false"),
    _rw("SampledDataCtrlr", "RegisterValuesWithoutPhases", "boolean", "false"),
    _rw("AlignedDataCtrlr", "Enabled", "boolean", "false"),
    _measurands("AlignedDataCtrlr", "Measurands", "Energy.Active.Import.Register"),
    # 0 turns clock-aligned sampling off.
    _rw("AlignedDataCtrlr", "Interval", "integer", "900", unit="s", min_limit=0),
    _rw("AlignedDataCtrlr", "SendDuringIdle", "boolean", "false"),
    _rw("AlignedDataCtrlr", "SignReadings", "boolean", "false"),
    _measurands("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register"),
    _rw("AlignedDataCtrlr", "TxEndedInterval", "integer", "0", unit="s", min_limit=0),
    # A00.FR.205: a passwordString of 16 up to maxLimit (at least 40) characters.
    VariableSpec("SecurityCtrlr", "BasicAuthPassword", "string", mutability=WRITE_ONLY,
                 min_limit=16, max_limit=40, pattern=PASSWORD_PATTERN),
    # The identity is the station's WebSocket path, owned by the fleet configuration, so a
    # CSMS may read but not change it here (as with SecurityProfile).
    _ro("SecurityCtrlr", "Identity", "string", max_limit=48),  # from the station
    _rw("SecurityCtrlr", "OrganizationName", "string", "OpenFleet", max_limit=64),
    # 0 is the simulator's "no security"; profiles 1-3 are the spec's.
    _ro("SecurityCtrlr", "SecurityProfile", "integer", "0", min_limit=0, max_limit=3),
    _ro("SecurityCtrlr", "CertificateEntries", "integer", "0", min_limit=0),
    _ro("DeviceDataCtrlr", "ItemsPerMessage", "integer", "50", instance="GetReport",
        constant=True),
    _ro("DeviceDataCtrlr", "ItemsPerMessage", "integer", "50", instance="GetVariables",
        constant=True),
    _ro("DeviceDataCtrlr", "ItemsPerMessage", "integer", "50", instance="SetVariables",
        constant=True),
    _ro("DeviceDataCtrlr", "BytesPerMessage", "integer", "65536", instance="GetReport",
        constant=True),
    _ro("DeviceDataCtrlr", "BytesPerMessage", "integer", "65536", instance="GetVariables",
        constant=True),
    _ro("DeviceDataCtrlr", "BytesPerMessage", "integer", "65536", instance="SetVariables",
        constant=True),
)

# One copy per configured EVSE.
EVSE_VARIABLES: tuple[VariableSpec, ...] = (
    _ro("EVSE", "AvailabilityState", "OptionList", "Available",
        values_list=AVAILABILITY_STATES, persistent=False),
    _ro("EVSE", "Available", "boolean", "true"),
    # Actual is the instantaneous power; MaxSet and maxLimit the EVSE's rating (from config).
    _ro("EVSE", "Power", "decimal", "0", unit="W", min_limit=0,
        attributes=(ACTUAL, MAX_SET), persistent=False),
    _ro("EVSE", "SupplyPhases", "integer", "3", min_limit=0, max_limit=3, constant=True),
)

# One copy per configured connector.
CONNECTOR_VARIABLES: tuple[VariableSpec, ...] = (
    _ro("Connector", "AvailabilityState", "OptionList", "Available",
        values_list=AVAILABILITY_STATES, persistent=False),
    _ro("Connector", "Available", "boolean", "true"),
    _ro("Connector", "ConnectorType", "string", constant=True),  # from config
    _ro("Connector", "SupplyPhases", "integer", "3", min_limit=0, max_limit=3, constant=True),
)
# fmt: on


# -- binding the tables to a station ---------------------------------------------------------


def attribute_key(
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


# Lowercased, as Part 2 matches names case-insensitively.
def component_key(name: str, instance: str | None, evse: int | None, connector: int | None):
    return (name.lower(), (instance or "").lower(), evse, connector)


def variable_key(name: str, instance: str | None) -> tuple:
    return (name.lower(), (instance or "").lower())


# The station's own facts, in the order station_layout takes them. Their values differ from
# station to station, so a DeviceModel holds them; only whether one is missing shapes a layout.
STATION_FACTS = tuple(
    f"ChargingStation/{name}/Actual"
    for name in ("Model", "VendorName", "SerialNumber", "FirmwareVersion")
) + ("SecurityCtrlr/Identity/Actual", "SecurityCtrlr/SecurityProfile/Actual")


class BoundVariable:
    """A catalog variable bound to one component (and EVSE/connector) of a layout."""

    __slots__ = ("spec", "evse", "connector", "slots")

    def __init__(self, spec: VariableSpec, evse: int | None, connector: int | None):
        self.spec = spec
        self.evse = evse
        self.connector = connector
        # Attribute type -> slot, in the spec's attribute order.
        self.slots: dict[str, int] = {}


class Layout:
    """The variables of every station with the same EVSEs, connectors and missing facts.

    Each attribute has a slot: an index into keys (its attribute_key) and defaults. Nothing
    changes once built except `parsed`, typed defaults memoized on first read.
    """

    def __init__(self) -> None:
        # component_key + variable_key -> variable, in report order.
        self.variables: dict[tuple, BoundVariable] = {}
        self.components: set[tuple] = set()
        # (component, variable, evse, connector, variable instance, attribute) as the catalog
        # spells them -> slot, so the station's own reads need no lowercasing.
        self.slots: dict[tuple, int] = {}
        # Lowercased attribute_key -> slot, for saved values.
        self.by_key: dict[str, int] = {}
        self.keys: list[str] = []
        self.defaults: list[str] = []
        self.specs: list[VariableSpec] = []
        self.parsed: dict[int, object] = {}
        # Slot of each of STATION_FACTS, None where the layout lacks it.
        self.fact_slots: tuple[int | None, ...] = ()

    def add(self, spec: VariableSpec, evse: int | None, connector: int | None, facts: Mapping):
        bound = BoundVariable(spec, evse, connector)
        where = component_key(spec.component, None, evse, connector)
        self.variables[where + variable_key(spec.name, spec.instance)] = bound
        self.components.add(where)
        for attribute in spec.attributes:
            key = attribute_key(
                spec.component,
                spec.name,
                evse=evse,
                connector=connector,
                variable_instance=spec.instance,
                attribute_type=attribute,
            )
            slot = bound.slots[attribute] = len(self.keys)
            self.keys.append(key)
            # A fact (a value taken from the station's config) replaces the catalog default.
            self.defaults.append(facts.get(key) or spec.default)
            self.specs.append(spec)
            self.by_key[key.lower()] = slot
            spelled = (spec.component, spec.name, evse, connector, spec.instance, attribute)
            self.slots[spelled] = slot


def station_layout(evses: Sequence[EvseConfig], facts: Sequence[str | None]) -> Layout:
    """The (shared) layout of a station; facts are its values of STATION_FACTS."""
    absent = tuple(key for key, fact in zip(STATION_FACTS, facts, strict=True) if fact is None)
    supply_phases = str(max((evse.phases for evse in evses), default=0))
    return _layout(tuple(map(_evse_layout, evses)), supply_phases, absent)


# Distinct layouts kept for sharing; a model keeps its own layout alive after eviction.
@lru_cache(maxsize=256)
def _layout(evses: tuple[tuple, ...], supply_phases: str, absent: tuple[str, ...]) -> Layout:
    layout = Layout()
    facts = {attribute_key("ChargingStation", "SupplyPhases"): supply_phases}
    for spec in STATION_VARIABLES:
        if attribute_key(spec.component, spec.name) in absent:
            continue  # the station has no such value, e.g. no serial number
        layout.add(spec, None, None, facts)
    for evse_id, watts, phases, connectors in evses:
        facts.update(_evse_facts(evse_id, watts, phases, connectors))
        for spec in EVSE_VARIABLES:
            # Part 2 requires EVSE.Power's maxLimit to hold the power the EVSE can deliver.
            if spec.name == "Power":
                spec = replace(spec, max_limit=watts)
            layout.add(spec, evse_id, None, facts)
        for connector_id, _ in connectors:
            for spec in CONNECTOR_VARIABLES:
                layout.add(spec, evse_id, connector_id, facts)
    canonical = {key: slot for slot, key in enumerate(layout.keys)}
    layout.fact_slots = tuple(canonical.get(key) for key in STATION_FACTS)
    return layout


def _evse_layout(evse: EvseConfig) -> tuple:
    # Everything the EVSE's variables and their defaults depend on, and nothing else.
    watts = round(evse.max_power_kw * 1000, 3)
    watts = int(watts) if watts.is_integer() else watts
    connectors = tuple((c.connector_id, c.connector_type) for c in evse.connectors)
    return (evse.evse_id, watts, str(evse.phases), connectors)


def _evse_facts(evse_id: int, watts: float, phases: str, connectors: tuple) -> dict[str, str]:
    facts = {
        attribute_key("EVSE", "Power", evse=evse_id, attribute_type=MAX_SET): str(watts),
        attribute_key("EVSE", "SupplyPhases", evse=evse_id): phases,
    }
    for connector_id, connector_type in connectors:
        where = {"evse": evse_id, "connector": connector_id}
        facts[attribute_key("Connector", "ConnectorType", **where)] = connector_type
        facts[attribute_key("Connector", "SupplyPhases", **where)] = phases
    return facts
