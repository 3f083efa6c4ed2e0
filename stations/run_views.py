"""Load-test runs in the dashboard: start, watch, stop, read and compare reports."""

from __future__ import annotations

import asyncio
import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import loadtest, reports
from .engine.metrics import RunMetrics
from .models import LoadTestRun, Scenario, StationTemplate

# Runs started from this web process, by id: their stop flag and live metrics.
_active: dict[int, tuple[asyncio.Event, RunMetrics, asyncio.Task]] = {}


def active_metrics() -> dict[int, RunMetrics]:
    return {pk: metrics for pk, (_stop, metrics, _task) in _active.items()}


@login_required
def run_list(request):
    return render(request, "runs/list.html", {
        "runs": LoadTestRun.objects.all()[:100],
        "scenarios": Scenario.objects.all(),
        "templates": StationTemplate.objects.all(),
        "error": request.GET.get("error", ""),
    })


@login_required
def run_detail(request, pk):
    run = get_object_or_404(LoadTestRun, pk=pk)
    rows = reports.action_rows(run.report) if run.report else []
    return render(request, "runs/detail.html", {
        "run": run, "rows": rows, "active": pk in _active,
        "facts": reports.headline(run.report) if run.report else [],
        "report_json": json.dumps(run.report["summary"] if run.report else None),
    })


@login_required
def run_download(request, pk, fmt):
    run = get_object_or_404(LoadTestRun, pk=pk)
    if not run.report:
        raise Http404("The run has no report yet")
    writers = {"json": (reports.to_json, "application/json"),
               "csv": (reports.to_csv, "text/csv"), "html": (reports.to_html, "text/html")}
    if fmt not in writers:
        raise Http404("Unknown format")
    writer, content_type = writers[fmt]
    response = HttpResponse(writer(run.report), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="loadtest-{run.pk}.{fmt}"'
    return response


@login_required
def run_compare(request):
    try:
        a = get_object_or_404(LoadTestRun, pk=int(request.GET["a"]))
        b = get_object_or_404(LoadTestRun, pk=int(request.GET["b"]))
    except (KeyError, ValueError) as exc:
        raise Http404("Pick two runs") from exc
    if not (a.report and b.report):
        raise Http404("Both runs need a report")
    return render(request, "runs/compare.html", {
        "a": a, "b": b, "rows": reports.compare(a.report, b.report),
        "facts": list(zip(reports.headline(a.report), reports.headline(b.report),
                          strict=True)),
    })


@login_required
@require_POST
async def run_start(request):
    """Check the form, then run in this process; the page follows it by polling."""
    form = request.POST
    try:
        stations = int(form.get("stations") or 0)
        ramp = float(form["ramp"]) if form.get("ramp") else None
        duration = float(form["duration"]) if form.get("duration") else None
        seed = int(form["seed"]) if form.get("seed") else None
        loadtest.check_parameters(stations=stations, ramp_per_second=ramp, duration_s=duration)
        source = await asyncio.to_thread(loadtest.resolve_scenario, form.get("scenario", ""))
        await loadtest.check_reachable(form.get("csms_url", ""))
        run = await asyncio.to_thread(
            loadtest.create_run, csms_url=form["csms_url"], stations=stations,
            ramp_per_second=ramp, duration_s=duration, source=source, seed=seed,
            keep_stations=bool(form.get("keep")), template=form.get("template", ""),
            security_profile=int(form.get("security_profile") or 0),
            password=form.get("password", ""))
    except (ValueError, loadtest.LoadTestError) as exc:
        from urllib.parse import quote

        return redirect(f"/runs/?error={quote(str(exc))}")
    stop, metrics = asyncio.Event(), RunMetrics()
    task = asyncio.ensure_future(loadtest.execute(run, stop, metrics=metrics))
    _active[run.pk] = (stop, metrics, task)
    task.add_done_callback(lambda _t, pk=run.pk: _active.pop(pk, None))
    return redirect(f"/runs/{run.pk}/")


@login_required
@require_POST
def run_stop(request, pk):
    active = _active.get(pk)
    if active is not None:
        active[0].set()
    return redirect(f"/runs/{pk}/")


@login_required
def run_live(request, pk):
    active = _active.get(pk)
    if active is None:
        run = get_object_or_404(LoadTestRun, pk=pk)
        return JsonResponse({"running": False, "status": run.status})
    _, metrics, _task = active
    return JsonResponse({"running": True, "status": "running", "live": metrics.live(),
                         "summary": RunMetrics.summary(metrics.snapshot())})
