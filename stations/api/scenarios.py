"""Scenarios a run can take: the library's files and the database's, by the name a run
gives (`scenario`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from ..engine.scenario import ScenarioError, load_scenario_file
from ..loadtest_params import library
from ..models import Scenario as ScenarioRow
from .run_serializers import ScenarioSerializer


def _described(name: str, source: str, format: str, definition: str, read) -> dict:
    entry = {"name": name, "source": source, "format": format, "title": None,
             "duration_s": None, "seed": None, "ramp_per_second": None, "thresholds": {},
             "error": None, "definition": definition}
    try:
        scenario = read()
    except ScenarioError as exc:
        return entry | {"error": str(exc)}
    return entry | {"title": scenario.name, "duration_s": scenario.duration_s,
                    "seed": scenario.seed, "thresholds": dict(scenario.thresholds),
                    "ramp_per_second": scenario.boot.ramp_per_second if scenario.boot
                    else None}


def scenarios() -> list[dict]:
    """The library first (a file's name wins over a database scenario of the same name)."""
    found = [_described(name, "library", path.suffix.lstrip("."),
                        path.read_text(encoding="utf-8"),
                        lambda path=path: load_scenario_file(path))
             for name, path in library().items()]
    found += [_described(row.name, "database", row.format, row.definition, row.parsed)
              for row in ScenarioRow.objects.all()]
    return found


class ScenarioListView(APIView):
    @extend_schema(responses=ScenarioSerializer(many=True), tags=["runs"],
                   summary="Scenarios a run can take, from the library and the database")
    def get(self, request):
        return Response(scenarios())
