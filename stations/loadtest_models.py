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
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Run {self.pk} ({self.scenario_name}, {self.station_count} stations)"

    @property
    def station_prefix(self) -> str:
        return f"LT{self.pk}-"
