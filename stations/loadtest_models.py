"""Load-test scenarios and runs, as stored in the database."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from .models import ConnectionSettings


class Scenario(models.Model):
    """A scenario definition (TOML or JSON), editable in the admin and versioned in files."""

    name = models.CharField(max_length=100, unique=True)
    format = models.CharField(max_length=4, choices=[("toml", "TOML"), ("json", "JSON")],
                              default="toml")
    definition = models.TextField(help_text="See scenarios/*.toml for examples.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def parsed(self):
        from .engine.scenario import parse_scenario

        return parse_scenario(self.definition, format=self.format)

    def clean(self):
        from .engine.scenario import ScenarioError

        try:
            self.parsed()
        except ScenarioError as exc:
            raise ValidationError({"definition": str(exc)}) from exc


class LoadTestRun(ConnectionSettings):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        STOPPED = "stopped"
        FAILED = "failed"

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    station_count = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    ramp_per_second = models.FloatField(validators=[MinValueValidator(0.001)])
    duration_s = models.FloatField(validators=[MinValueValidator(1)])
    seed = models.BigIntegerField(default=1)
    scenario_name = models.CharField(max_length=100)
    # The definition as it was when the run started, so a report can be reproduced.
    scenario_text = models.TextField()
    scenario_format = models.CharField(max_length=4, default="toml")
    keep_stations = models.BooleanField(default=False)
    # The StationTemplate the run's stations were made from (EVSEs, connectors, model);
    # blank: one 22 kW EVSE with one connector each.
    template_name = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=40, blank=True)
    # Seconds a station waits for an answer; also how long the run drains at its end.
    response_timeout_s = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    # Threshold name -> limit (stations.engine.verdict): the scenario's, then the run's own.
    thresholds = models.JSONField(default=dict, blank=True)
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Run {self.pk} ({self.scenario_name}, {self.station_count} stations)"

    @property
    def station_prefix(self) -> str:
        return f"LT{self.pk}-"

    @property
    def verdict(self) -> dict | None:
        return (self.report or {}).get("verdict")

    @property
    def result(self) -> str:
        """What the runs list shows: a completed run's verdict (when it had thresholds), or
        how the run ended."""
        if self.status != self.Status.COMPLETED:
            return self.status
        verdict = self.verdict
        if verdict is None or not verdict["checks"]:
            return self.status
        return "passed" if verdict["passed"] else "failed"

    @property
    def ran_s(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None
