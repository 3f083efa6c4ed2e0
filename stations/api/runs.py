"""Load-test runs: start one, follow it, stop it, fetch its report and verdict.

A run is checked as the dashboard's form and `manage.py loadtest` check theirs, then runs
in this web process, as a run started from the dashboard does: its live progress and its
stop are this process's; its report, stored with the run, any process serves.

    POST /runs/                      start one (201); a bad value is a 400 on its field
    GET  /runs/, /runs/<id>/         status, progress while it runs, then summary and verdict
    POST /runs/<id>/stop/            end it early (202): it drains, then reports
    GET  /runs/<id>/report/          JSON, CSV, HTML or JUnit XML: Accept, or report.<fmt>
"""

from __future__ import annotations

from adrf.viewsets import GenericViewSet
from asgiref.sync import sync_to_async
from django.db.models import F
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from .. import loadtest, reports
from ..models import LoadTestRun
from .run_serializers import (
    NewRunSerializer,
    RunDetailSerializer,
    RunSerializer,
    live_progress,
)
from .stations import Pages


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class ReportRenderer(BaseRenderer):
    """A stored report in one of the formats the dashboard downloads."""

    suffix = ""

    @staticmethod
    def write(report: dict) -> str:
        raise NotImplementedError

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return self.write(data).encode("utf-8")


class JsonReport(ReportRenderer):
    media_type, format, suffix = "application/json", "json", "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259): no parameter
    write = staticmethod(reports.to_json)


class CsvReport(ReportRenderer):
    media_type, format, suffix = "text/csv", "csv", "csv"
    write = staticmethod(reports.to_csv)


class HtmlReport(ReportRenderer):
    media_type, format, suffix = "text/html", "html", "html"
    write = staticmethod(reports.to_html)


class JUnitReport(ReportRenderer):
    media_type, format, suffix = "application/xml", "junit", "junit.xml"
    write = staticmethod(reports.to_junit)


class XmlReport(JUnitReport):
    format = "xml"


REPORT_RENDERERS = [JsonReport, CsvReport, HtmlReport, JUnitReport, XmlReport]
REPORT_FORMATS = [r.format for r in REPORT_RENDERERS]

RUN_ERRORS = {
    400: OpenApiResponse(description="A bad parameter: its field names what is wrong, in the "
                         "dashboard form's words; an unreachable CSMS is one on csms_url."),
}
NOT_RUNNING = OpenApiResponse(description="The run has ended, or runs in another process.")


def _progress() -> dict[int, dict]:
    # On the event loop, where the runs' counters change.
    return {pk: live_progress(active) for pk, active in loadtest.active_runs().items()}


async def _run(pk) -> LoadTestRun:
    run = await LoadTestRun.objects.filter(pk=pk).afirst()
    if run is None:
        raise NotFound(f"No run {pk}.")
    return run


@extend_schema_view(
    list=extend_schema(summary="Load-test runs, newest first, 50 a page"),
    retrieve=extend_schema(summary="A run: its status, its progress while it runs, its "
                           "summary and verdict when it has ended"),
)
class RunViewSet(GenericViewSet):
    """Load tests of a CSMS: simulated stations play a scenario; a verdict checks limits."""

    serializer_class = RunSerializer
    pagination_class = Pages
    lookup_value_regex = "[0-9]+"
    # The list reads each run's verdict, not its whole report (timelines of hours).
    queryset = LoadTestRun.objects.defer("report", "scenario_text")

    def get_queryset(self):
        return super().get_queryset().annotate(stored_verdict=F("report__verdict"))

    async def list(self, request):
        progress = _progress()
        return await sync_to_async(self._page)(request, progress)

    def _page(self, request, progress):
        page = self.paginate_queryset(self.get_queryset())
        answer = RunSerializer(page, many=True, context={"progress": progress})
        return self.get_paginated_response(answer.data)

    @extend_schema(responses=RunDetailSerializer)
    async def retrieve(self, request, pk=None):
        run = await _run(pk)
        return Response(RunDetailSerializer(run, context={"progress": _progress()}).data)

    @extend_schema(request=NewRunSerializer,
                   responses={201: RunDetailSerializer, **RUN_ERRORS},
                   summary="Start a load test; it runs in this web process")
    async def create(self, request):
        body = NewRunSerializer(data=request.data)
        await sync_to_async(body.is_valid)(raise_exception=True)
        try:
            await loadtest.check_reachable(body.validated_data["csms_url"])
        except loadtest.LoadTestError as exc:
            raise serializers.ValidationError({"csms_url": [str(exc)]}) from None
        run = await sync_to_async(body.create_run)()
        loadtest.start_in_process(run, validate=body.validated_data["schema_validation"])
        answer = RunDetailSerializer(run, context={"progress": _progress()}).data
        return Response(answer, status=status.HTTP_201_CREATED,
                        headers={"Location": f"{request.path.rstrip('/')}/{run.pk}/"})

    @extend_schema(request=None, responses={202: RunDetailSerializer, 409: NOT_RUNNING},
                   summary="Stop a run before its end: it drains, then stores its report")
    @action(detail=True, methods=["post"])
    async def stop(self, request, pk=None):
        run = await _run(pk)
        active = loadtest.active_runs().get(run.pk)
        if active is None:
            if run.status in (LoadTestRun.Status.PENDING, LoadTestRun.Status.RUNNING):
                raise Conflict(f"Run {run.pk} is not run by this process (it was started by "
                               "`manage.py loadtest` or another web process): stop it there.")
            raise Conflict(f"Run {run.pk} has ended: {run.status}.")
        active.stop.set()
        answer = RunDetailSerializer(run, context={"progress": _progress()}).data
        return Response(answer, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "text/html"): OpenApiTypes.STR,
            (200, "application/xml"): OpenApiTypes.STR,
            409: OpenApiResponse(description="The run has no report yet: it is running."),
        },
        summary="The run's report: JSON, CSV (per action, then the verdict), one HTML "
                "file, or JUnit XML (a testcase per threshold)",
        description="Pick the format with `Accept`, `?format=` (" + ", ".join(REPORT_FORMATS)
                    + ") or the suffix: `/runs/{id}/report.junit`.")
    @action(detail=True, methods=["get"], renderer_classes=REPORT_RENDERERS)
    def report(self, request, pk=None, format=None):
        run = LoadTestRun.objects.filter(pk=pk).only("pk", "status", "report").first()
        if run is None:
            raise NotFound(f"No run {pk}.")
        if not run.report:
            raise Conflict(f"Run {run.pk} has no report yet: it is {run.status}.")
        suffix = request.accepted_renderer.suffix
        return Response(run.report, headers={
            "Content-Disposition": f'attachment; filename="loadtest-{run.pk}.{suffix}"'})

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(response.accepted_renderer,
                                                      ReportRenderer):
            # An error is JSON, whichever format the report was asked in.
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response
