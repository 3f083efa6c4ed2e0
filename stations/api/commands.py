"""What a driver or technician does at a station, and fleet-wide connect/disconnect.

These views wait for the station's answer (up to the command timeout), so they are async:
a slow or absent engine keeps no worker thread, and the other pages stay responsive.
The answer is the command's outcome, with an HTTP status that says who said no:

    200  done (Accepted, Stopped, …)
    409  the station refused: Rejected, Invalid (its CSMS rejected the idToken), Offline …
    503  no engine runs the station (disabled, or not started yet)
    504  NoAnswer: the station's engine did not answer in time
"""

from __future__ import annotations

from adrf.views import APIView
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from .. import services
from ..engine import id_tokens
from ..models import Station
from ..shard_host import COMMANDS

STATION_COMMANDS = ("connect", "disconnect", "reboot")
EVSE_COMMANDS = tuple(c for c in COMMANDS if c not in STATION_COMMANDS)
TOKEN_COMMANDS = ("present_id_token", "start_charging")
AUTH_FIELDS = {"enter_pin": "pin", "present_contract": "emaid"}  # what each command takes
NOT_RUNNING = {"NotRunning", "Unknown"}  # services' and the shard's words for it


def outcome_status(outcome: dict) -> int:
    if outcome["ok"]:
        return 200
    if outcome["status"] == "NoAnswer":
        return 504
    if outcome["status"] in NOT_RUNNING:
        return 503
    return 409


class OutcomeSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.CharField(help_text="Accepted, Stopped, Rejected, Invalid, Offline, "
                                   "NotRunning, NoAnswer, …")
    detail = serializers.CharField(allow_blank=True)


OUTCOMES = {
    200: OutcomeSerializer,
    409: OpenApiResponse(OutcomeSerializer, "The station refused; `status` and `detail` say why."),
    503: OpenApiResponse(OutcomeSerializer, "No engine runs the station."),
    504: OpenApiResponse(OutcomeSerializer, "The engine did not answer in time (NoAnswer)."),
}


class CommandSerializer(serializers.Serializer):
    command = serializers.ChoiceField(choices=list(COMMANDS))
    evse_id = serializers.IntegerField(min_value=1, required=False,
                                       help_text="Needed by every command but "
                                       + ", ".join(STATION_COMMANDS) + ".")
    connector_id = serializers.IntegerField(min_value=1, required=False,
                                            help_text="plug_in: which connector (default: the "
                                            "first free one).")
    id_token = serializers.CharField(
        max_length=id_tokens.MAX_LENGTH, required=False, allow_blank=True,
        help_text="Needed by " + ", ".join(TOKEN_COMMANDS) + ": a value of token_type's "
        "format (ISO14443: 8 or 14 hex digits, such as 04A1B2C3; empty for NoAuthorization).")
    token_type = serializers.ChoiceField(
        choices=list(id_tokens.TYPES), required=False,
        help_text=", ".join(TOKEN_COMMANDS) + ": the idToken's type, default "
        f"{id_tokens.DEFAULT_TYPE}.")
    drawing = serializers.BooleanField(required=False,
                                       help_text="set_ev_drawing: does the EV draw power?")
    pin = serializers.RegexField(r"^\d{1,36}$", required=False,
                                 help_text="enter_pin: the digits the driver types (C04).")
    emaid = serializers.CharField(max_length=id_tokens.MAX_LENGTH, required=False,
                                  help_text="present_contract: the contract the EV presents "
                                  "with its certificate over ISO 15118 (C07), e.g. "
                                  "DE8AAC12345678.")

    def validate(self, attrs):
        command, errors = attrs["command"], {}
        if command in EVSE_COMMANDS and "evse_id" not in attrs:
            errors["evse_id"] = [f"{command} needs an EVSE id."]
        if command in TOKEN_COMMANDS:
            token_type = attrs.get("token_type", id_tokens.DEFAULT_TYPE)
            if "id_token" not in attrs and token_type != "NoAuthorization":
                errors["id_token"] = [f"{command} needs an idToken."]
            elif problem := id_tokens.problem(token_type, attrs.get("id_token", "")):
                errors["id_token"] = [f"{problem}."]
        if command == "set_ev_drawing" and "drawing" not in attrs:
            errors["drawing"] = ["set_ev_drawing needs drawing: true or false."]
        if command == "present_contract":
            emaid = attrs.get("emaid", "").strip()
            if not emaid:
                errors["emaid"] = ["present_contract needs emaid."]
            elif problem := id_tokens.problem("eMAID", emaid):
                errors["emaid"] = [f"{problem}."]
        if command == "enter_pin" and not attrs.get("pin"):
            errors["pin"] = ["enter_pin needs pin: 1-36 digits."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def args(self) -> dict:
        """The arguments `command` takes, and only those."""
        data = self.validated_data
        command, args = data["command"], {}
        if command in EVSE_COMMANDS:
            args["evse_id"] = data["evse_id"]
        if command == "plug_in" and "connector_id" in data:
            args["connector_id"] = data["connector_id"]
        if command in TOKEN_COMMANDS:
            args["id_token"] = data.get("id_token", "")
            args["token_type"] = data.get("token_type", id_tokens.DEFAULT_TYPE)
        if command == "set_ev_drawing":
            args["drawing"] = data["drawing"]
        if command in AUTH_FIELDS:
            args[AUTH_FIELDS[command]] = data[AUTH_FIELDS[command]].strip()
        return args


async def _existing(station_id: str) -> None:
    if not await Station.objects.filter(station_id=station_id).aexists():
        raise NotFound(f"No station {station_id}.")


class StationCommandView(APIView):
    @extend_schema(operation_id="stations_command", request=CommandSerializer,
                   responses=OUTCOMES, tags=["stations"],
                   summary="Act at a station as a driver or technician would")
    async def post(self, request, station_id):
        command = CommandSerializer(data=request.data)
        command.is_valid(raise_exception=True)
        await _existing(station_id)
        outcome = await services.asend_command(station_id, command.validated_data["command"],
                                               **command.args())
        outcome.pop("data", None)
        return Response(outcome, status=outcome_status(outcome))


class VariableSerializer(serializers.Serializer):
    component = serializers.CharField()
    evse = serializers.IntegerField(allow_null=True)
    connector = serializers.IntegerField(allow_null=True)
    variable = serializers.CharField()
    instance = serializers.CharField(allow_null=True)
    value = serializers.CharField(allow_null=True)
    mutability = serializers.CharField()
    data_type = serializers.CharField(allow_null=True)
    unit = serializers.CharField(allow_null=True)


class VariablesSerializer(OutcomeSerializer):
    variables = VariableSerializer(many=True, required=False)


class StationVariablesView(APIView):
    @extend_schema(operation_id="stations_variables", tags=["stations"],
                   responses={**OUTCOMES, 200: VariablesSerializer},
                   summary="The device model of a running station, as it reports it now")
    async def get(self, request, station_id):
        await _existing(station_id)
        outcome = await services.asend_command(station_id, "get_variables")
        variables = outcome.pop("data", None)
        if outcome["ok"]:
            # Write-only variables (BasicAuthPassword) come without a value from the engine.
            outcome["variables"] = variables or []
        return Response(outcome, status=outcome_status(outcome))


class AuthorizationView(APIView):
    @extend_schema(operation_id="stations_authorization", tags=["stations"],
                   responses={**OUTCOMES, 200: OpenApiResponse(
                       description="`cache` (enabled, policy, lifetime_s, bytes, entries), "
                       "`local_list` (enabled, version, entries), `master_pass` (group, "
                       "would_stop) and the AuthCtrlr `settings` that decide.")},
                   summary="The running station's authorization cache, local list and "
                   "master pass")
    async def get(self, request, station_id):
        await _existing(station_id)
        outcome = await services.asend_command(station_id, "get_authorization")
        data = outcome.pop("data", None)
        if outcome["ok"]:
            outcome.update(data or {})
        return Response(outcome, status=outcome_status(outcome))


class FleetCommandSerializer(serializers.Serializer):
    command = serializers.ChoiceField(choices=["connect_all", "disconnect_all"])


class FleetCommandResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    count = serializers.IntegerField(help_text="Enabled stations told to connect or disconnect.")


class FleetCommandView(APIView):
    @extend_schema(operation_id="fleet_command", request=FleetCommandSerializer,
                   responses=FleetCommandResultSerializer, tags=["fleet"],
                   summary="Connect or disconnect every enabled station")
    async def post(self, request):
        command = FleetCommandSerializer(data=request.data)
        command.is_valid(raise_exception=True)
        online = command.validated_data["command"] == "connect_all"
        return Response({"ok": True, "count": await services.aset_fleet_online(online)})
