"""Load-test runs as the API takes and gives them.

A new run takes the parameters of the dashboard's form and of `manage.py loadtest`, and is
checked by the same code in the same words (the form's error messages are read from the
form, the limits from loadtest_params). The password and the private key are write-only:
answers say `has_password`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import loadtest
from ..engine.loadrun import PENDING
from ..engine.verdict import ThresholdError, check_thresholds
from ..models import LoadTestRun, SecurityProfile, StationTemplate
from ..run_forms import RunForm
from ..validators import validate_csms_url
from .serializers import SECRET_FIELDS, drf_errors, normalise_pem

FORM = RunForm.base_fields
# Series for charts: in the report (GET /runs/<id>/report/), not in every answer.
TIMELINES = ("timeline", "latency_timeline")


def form_words(name: str, *codes: str) -> dict[str, str]:
    return {code: FORM[name].error_messages[code] for code in codes}


class ThresholdsField(serializers.DictField):
    """Name → limit, checked as a scenario's [thresholds] and `--threshold` are."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.FloatField(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        try:
            return check_thresholds(data)
        except ThresholdError as exc:
            raise serializers.ValidationError(str(exc)) from None


def _checked(field: str, **value):
    problems = loadtest.parameter_problems(
        **{"stations": 1, "ramp_per_second": None, "duration_s": None} | value)
    if field in problems:
        raise serializers.ValidationError(problems[field])
    return next(iter(value.values()))


class NewRunSerializer(serializers.Serializer):
    csms_url = serializers.CharField(
        max_length=500, validators=[validate_csms_url],
        help_text="ws:// or wss://; each station connects to <URL>/<station id>. It must be "
                  "reachable when the run is created.")
    stations = serializers.IntegerField(
        min_value=1, max_value=loadtest.MAX_STATIONS,
        error_messages=form_words("stations", "min_value", "max_value"),
        help_text="Stations made for the run (ids LT<run>-00001 …) and removed after it.")
    scenario = serializers.CharField(
        help_text="By name: a file of the scenario library (`mixed.toml`, or `mixed`) or a "
                  "scenario of the database; GET /scenarios/ lists them.")
    ramp = serializers.FloatField(
        required=False, allow_null=True, error_messages=form_words("ramp", "invalid"),
        help_text="Stations started per second; default the scenario's.")
    duration = serializers.FloatField(
        required=False, allow_null=True, error_messages=form_words("duration", "invalid"),
        help_text="Seconds, ramp-up included; then the run drains. Default the scenario's.")
    response_timeout = serializers.FloatField(
        default=30.0, error_messages=form_words("response_timeout", "invalid"),
        help_text="Seconds a station waits for an answer; the run drains at most this long.")
    seed = serializers.IntegerField(required=False, allow_null=True,
                                    help_text="Default the scenario's.")
    template = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Make the stations from this station template (EVSEs, connectors, model); "
                  "blank: one EVSE with one connector.")
    security_profile = serializers.ChoiceField(choices=SecurityProfile.choices, default=0)
    password = serializers.CharField(required=False, allow_blank=True, default="",
                                     help_text="Basic auth (profiles 1 and 2). Write-only.",
                                     **SECRET_FIELDS["password"])
    ca_cert = serializers.CharField(required=False, allow_blank=True, default="",
                                    help_text="PEM, to verify the CSMS (profiles 2 and 3).")
    client_cert = serializers.CharField(required=False, allow_blank=True, default="",
                                        help_text="PEM (profile 3).")
    client_key = serializers.CharField(required=False, allow_blank=True, default="",
                                       help_text="PEM (profile 3). Write-only.",
                                       **SECRET_FIELDS["client_key"])
    thresholds = ThresholdsField(
        required=False, default=dict,
        help_text='{"p95_ms.Authorize": 500, "call_error_rate": 0.01}: added to the '
                  "scenario's, overriding the same name; the run's verdict checks them.")
    keep = serializers.BooleanField(default=False, help_text="Keep the stations afterwards.")
    schema_validation = serializers.BooleanField(
        default=True, help_text="Validate the stations' own frames (costs CPU).")

    def validate_scenario(self, name: str) -> loadtest.ScenarioSource:
        try:
            return loadtest.resolve_scenario(name)
        except loadtest.LoadTestError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_template(self, name: str) -> str:
        name = name.strip()
        if name and not StationTemplate.objects.filter(name=name).exists():
            raise serializers.ValidationError(f"no station template named {name!r}")
        return name

    # The form's and the command line's checks (zero, negative, above the limits), each on
    # its field, so that every bad number is named at once, as the form names them.
    def validate_ramp(self, value):
        return _checked("ramp", ramp_per_second=value)

    def validate_duration(self, value):
        return _checked("duration", duration_s=value)

    def validate_response_timeout(self, value):
        return _checked("response_timeout", response_timeout_s=value)

    def validate(self, attrs):
        normalise_pem(attrs)
        connection = {name: attrs[name] for name in (
            "csms_url", "security_profile", "password", "ca_cert", "client_cert", "client_key")}
        others = [f.name for f in LoadTestRun._meta.fields if f.name not in connection]
        try:
            # Profile against URL, password, certificate and key: the admin's checks.
            LoadTestRun(**connection).full_clean(exclude=others, validate_unique=False,
                                                 validate_constraints=False)
        except DjangoValidationError as exc:
            raise drf_errors(exc) from None
        return attrs

    def create_run(self) -> LoadTestRun:
        data = self.validated_data
        try:
            return loadtest.create_run(
                csms_url=data["csms_url"], stations=data["stations"],
                ramp_per_second=data.get("ramp"), duration_s=data.get("duration"),
                source=data["scenario"], seed=data.get("seed"), keep_stations=data["keep"],
                template=data["template"], security_profile=data["security_profile"],
                password=data["password"], ca_cert=data["ca_cert"],
                client_cert=data["client_cert"], client_key=data["client_key"],
                response_timeout_s=data["response_timeout"], thresholds=data["thresholds"])
        except loadtest.LoadTestError as exc:
            field = exc.field if exc.field in self.fields else "non_field_errors"
            raise serializers.ValidationError({field: [str(exc)]}) from None


class ProgressSerializer(serializers.Serializer):
    """Where a running run is; only the web process that runs it knows."""

    phase = serializers.CharField(help_text="pending, ramp, scenario, drain, done.")
    elapsed_s = serializers.FloatField(help_text="Since the first station started.")
    # Null while pending (its stations are being made): the run's own fields say them.
    duration_s = serializers.FloatField(allow_null=True)
    drain_limit_s = serializers.FloatField(allow_null=True)
    stations = serializers.IntegerField(allow_null=True)
    connected = serializers.IntegerField(help_text="Stations online now.")
    msgs_in_per_s = serializers.FloatField()
    msgs_out_per_s = serializers.FloatField()
    errors = serializers.IntegerField(help_text="CALLERRORs so far.")
    timeouts = serializers.IntegerField()


def live_progress(active: loadtest.ActiveRun) -> dict:
    """Read on the event loop that runs it: its counters change there."""
    live = active.metrics.live()
    # Before its stations exist a run has no LoadRun, and so no progress of its own.
    progress = active.progress() or {"phase": PENDING, "elapsed_s": 0.0}
    return {key: progress.get(key) for key in ("phase", "elapsed_s", "duration_s",
                                               "drain_limit_s", "stations")} | {
        key: live[key] for key in ("connected", "msgs_in_per_s", "msgs_out_per_s", "errors",
                                   "timeouts")}


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="p95_ms.Authorize, call_error_rate, …")
    limit = serializers.FloatField()
    measured = serializers.FloatField(allow_null=True,
                                      help_text="None: nothing to measure (fails).")
    passed = serializers.BooleanField()
    detail = serializers.CharField()


class VerdictSerializer(serializers.Serializer):
    passed = serializers.BooleanField(help_text="Every threshold met (true without any).")
    checks = CheckSerializer(many=True)


def stored_verdict(run: LoadTestRun) -> dict | None:
    """The verdict of a run read whole, or of one whose list query picked it out."""
    if hasattr(run, "stored_verdict"):
        return run.stored_verdict
    return run.verdict


class RunSerializer(serializers.ModelSerializer):
    scenario = serializers.CharField(source="scenario_name")
    stations = serializers.IntegerField(source="station_count")
    ramp = serializers.FloatField(source="ramp_per_second")
    duration = serializers.FloatField(source="duration_s",
                                      help_text="Seconds, ramp-up included.")
    response_timeout = serializers.FloatField(source="response_timeout_s")
    template = serializers.CharField(source="template_name")
    keep = serializers.BooleanField(source="keep_stations")
    thresholds = serializers.DictField(child=serializers.FloatField())
    has_password = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField(help_text="A completed run's verdict, passed "
                                               "or failed (when it had thresholds); else its "
                                               "status.")
    ran_s = serializers.FloatField(allow_null=True, help_text="From start to end, drain "
                                   "included.")
    progress = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()

    class Meta:
        model = LoadTestRun
        fields = ["id", "status", "result", "scenario", "csms_url", "security_profile",
                  "has_password", "stations", "ramp", "duration", "response_timeout", "seed",
                  "template", "keep", "thresholds", "created_at", "started_at", "ended_at",
                  "ran_s", "error", "progress", "verdict"]

    def get_has_password(self, run) -> bool:
        return bool(run.password)

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, run):
        return self.context.get("progress", {}).get(run.pk)

    @extend_schema_field(VerdictSerializer(allow_null=True))
    def get_verdict(self, run):
        return stored_verdict(run)

    def get_result(self, run) -> str:
        # LoadTestRun.result, from the verdict alone (a list does not read whole reports).
        verdict = stored_verdict(run)
        if run.status != LoadTestRun.Status.COMPLETED or not (verdict and verdict["checks"]):
            return run.status
        return "passed" if verdict["passed"] else "failed"


class RunDetailSerializer(RunSerializer):
    summary = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "summary"]

    def get_summary(self, run) -> dict | None:
        """What the run measured (see the JSON report), its timelines left out."""
        if not run.report:
            return None
        return {k: v for k, v in run.report["summary"].items() if k not in TIMELINES}


class ScenarioSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="What a run's `scenario` takes.")
    source = serializers.ChoiceField(choices=["library", "database"])
    format = serializers.CharField()
    title = serializers.CharField(allow_null=True, help_text="The scenario's own name.")
    duration_s = serializers.FloatField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True)
    ramp_per_second = serializers.FloatField(allow_null=True)
    thresholds = serializers.DictField(child=serializers.FloatField())
    error = serializers.CharField(allow_null=True, help_text="Why it does not parse; a run "
                                  "of it is refused.")
    definition = serializers.CharField()
