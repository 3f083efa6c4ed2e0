"""The dashboard's form to start a load test: the CLI's parameters, checked the same way."""

from __future__ import annotations

from django import forms

from . import loadtest
from .engine.verdict import ThresholdError, allowed, parse_threshold
from .models import SecurityProfile, StationTemplate
from .validators import validate_csms_url


class RunForm(forms.Form):
    csms_url = forms.CharField(
        label="CSMS URL", max_length=500, validators=[validate_csms_url],
        widget=forms.TextInput(attrs={"placeholder": "ws://csms.example:9000/ocpp"}),
        help_text="Each station connects to this URL + /<station id>.")
    stations = forms.IntegerField(
        label="Stations", min_value=1, max_value=loadtest.MAX_STATIONS, initial=100,
        error_messages={"min_value": "the number of stations must be at least 1",
                        "max_value": f"at most {loadtest.MAX_STATIONS:,} stations per run"})
    scenario = forms.ChoiceField(label="Scenario",
                                 help_text="From scenarios/ or the admin's Scenarios.")
    ramp = forms.FloatField(label="Ramp-up (stations/s)", required=False,
                            error_messages={"invalid": "the ramp-up rate (stations per second) "
                                                       "must be a positive number"},
                            widget=forms.NumberInput(attrs={"step": "any",
                                                            "placeholder": "scenario's"}))
    duration = forms.FloatField(
        label="Duration (s)", required=False,
        error_messages={"invalid": "the duration (seconds) must be a positive number"},
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "scenario's"}),
        help_text="The whole run, ramp-up included; then it drains.")
    response_timeout = forms.FloatField(
        label="Response timeout (s)", initial=30.0,
        error_messages={"invalid": "the response timeout (seconds) must be a positive number"},
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="How long a station waits for an answer, and the run drains at its end.")
    seed = forms.IntegerField(label="Seed", required=False,
                              widget=forms.NumberInput(attrs={"placeholder": "scenario's"}))
    template = forms.ChoiceField(label="Station template", required=False)
    security_profile = forms.TypedChoiceField(label="Security profile", coerce=int,
                                              choices=SecurityProfile.choices, initial=0,
                                              required=False, empty_value=0)
    password = forms.CharField(
        label="Password", required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Basic auth (profiles 1, 2). Never shown again, even after an error.")
    thresholds = forms.CharField(
        label="Thresholds", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "p95_ms.Authorize=500\n"
                                                               "call_error_rate=0.01"}),
        help_text="One NAME=VALUE a line; added to the scenario's, overriding the same name. "
                  + allowed()[0].upper() + allowed()[1:] + ".")
    keep = forms.BooleanField(label="Keep the stations afterwards", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scenario"].choices = [("", "— pick a scenario —"),
                                           *loadtest.scenario_choices()]
        self.fields["template"].choices = [("", "default: one EVSE, one connector")] + [
            (name, name) for name in StationTemplate.objects.values_list("name", flat=True)]

    def clean_thresholds(self) -> dict[str, float]:
        thresholds = {}
        for line in self.cleaned_data["thresholds"].splitlines():
            if not line.strip():
                continue
            try:
                name, limit = parse_threshold(line)
            except ThresholdError as exc:
                raise forms.ValidationError(str(exc)) from exc
            thresholds[name] = limit
        return thresholds

    def clean(self):
        data = super().clean()
        # The same checks, and words, as the command line's.
        problems = loadtest.parameter_problems(
            stations=data.get("stations", 1), ramp_per_second=data.get("ramp"),
            duration_s=data.get("duration"),
            response_timeout_s=data.get("response_timeout"))
        for field, problem in problems.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, problem)
        if self.errors and self.data.get("password"):
            self.add_error("password", "Enter the password again: it is not kept.")
        return data
