"""Load-test runs in the dashboard: start, watch, stop, read and compare reports."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import loadtest, reports
from .engine.metrics import RunMetrics
from .models import LoadTestRun
from .run_forms import RunForm

RUNS_LISTED = 100


def active_metrics() -> dict[int, RunMetrics]:
    """Live metrics of the runs this process executes (for /metrics)."""
    return {pk: active.metrics for pk, active in loadtest.active_runs().items()}


def _list_page(request, form: RunForm, status: int = 200):
    return render(request, "runs/list.html", {
        "runs": LoadTestRun.objects.defer("scenario_text", "password", "client_key")
        [:RUNS_LISTED],
        "form": form, "active": set(loadtest.active_runs()),
    }, status=status)


@login_required
def run_list(request):
    return _list_page(request, RunForm())


@login_required
@require_POST
async def run_start(request):
    """Check the form, then run in this process; the run page follows it by polling.

    A bad form comes back with each field's error and the values as typed."""
    form = await sync_to_async(RunForm)(request.POST)
    run = None
    if await sync_to_async(form.is_valid)():
        try:
            await loadtest.check_reachable(form.cleaned_data["csms_url"])
        except loadtest.LoadTestError as exc:
            form.add_error("csms_url", str(exc))
        else:
            run = await sync_to_async(_create)(form)
    if run is None:
        return await sync_to_async(_list_page)(request, form, status=400)
    loadtest.start_in_process(run)
    return redirect(f"/runs/{run.pk}/")


def _create(form: RunForm) -> LoadTestRun | None:
    data = form.cleaned_data
    try:
        source = loadtest.resolve_scenario(data["scenario"])
        return loadtest.create_run(
            csms_url=data["csms_url"], stations=data["stations"],
            ramp_per_second=data["ramp"], duration_s=data["duration"], source=source,
            seed=data["seed"], keep_stations=data["keep"], template=data["template"],
            security_profile=data["security_profile"], password=data["password"],
            response_timeout_s=data["response_timeout"], thresholds=data["thresholds"])
    except loadtest.LoadTestError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return None


@login_required
def run_detail(request, pk):
    run = get_object_or_404(LoadTestRun, pk=pk)
    report = run.report
    active = loadtest.active_runs().get(pk)
    return render(request, "runs/detail.html", {
        "run": run, "active": active is not None,
        "rows": reports.action_rows(report) if report else [],
        "facts": reports.headline(report) if report else [],
        "verdict": _shown(reports.verdict_of(report)) if report else None,
        "verdict_line": reports.verdict_line(report) if report else "",
        "thresholds": [(name, reports.figure(limit))
                       for name, limit in sorted(run.thresholds.items())],
        "ramp_s": run.station_count / run.ramp_per_second,
        # The charts' data, as a value for json_script (not a JSON string: it encodes).
        "report_data": report["summary"] if report else None,
        "progress": active.progress() if active else None,
    })


def _shown(verdict: dict) -> dict:
    return {**verdict, "checks": [
        {**check, "limit_text": reports.figure(check["limit"]),
         "measured_text": reports.figure(check["measured"])} for check in verdict["checks"]]}


DOWNLOADS = {
    "json": (reports.to_json, "application/json"),
    "csv": (reports.to_csv, "text/csv"),
    "html": (reports.to_html, "text/html"),
    "junit": (reports.to_junit, "application/xml"),
    "xml": (reports.to_junit, "application/xml"),
}


@login_required
def run_download(request, pk, fmt):
    run = get_object_or_404(LoadTestRun, pk=pk)
    if not run.report:
        raise Http404("The run has no report yet")
    if fmt not in DOWNLOADS:
        raise Http404("Unknown format")
    writer, content_type = DOWNLOADS[fmt]
    suffix = "junit.xml" if fmt in ("junit", "xml") else fmt
    response = HttpResponse(writer(run.report), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="loadtest-{run.pk}.{suffix}"'
    return response


def _picked(request, key: str) -> LoadTestRun | None:
    try:
        return LoadTestRun.objects.filter(pk=int(request.GET.get(key, ""))).first()
    except ValueError:
        return None


@login_required
def run_compare(request):
    a, b = _picked(request, "a"), _picked(request, "b")
    problem = None
    if a is None or b is None:
        problem = "Pick two runs to compare: one as A and one as B, in the list of runs."
    elif not (a.report and b.report):
        missing = ", ".join(f"#{r.pk}" for r in (a, b) if not r.report)
        problem = f"Both runs need a report; {missing} has none yet."
    if problem:
        return render(request, "runs/compare.html", {"problem": problem, "a": a, "b": b})
    return render(request, "runs/compare.html", {
        "a": a, "b": b, "rows": reports.compare(a.report, b.report),
        "columns": [label for _key, label, _relative in reports.COMPARED],
        "facts": list(zip(reports.headline(a.report), reports.headline(b.report),
                          strict=True)),
    })


@login_required
@require_POST
def run_stop(request, pk):
    active = loadtest.active_runs().get(pk)
    if active is not None:
        active.stop.set()
    return redirect(f"/runs/{pk}/")


@login_required
def run_live(request, pk):
    """Where a running run is, its live figures, and its timeline since `since` (unix s)."""
    active = loadtest.active_runs().get(pk)
    if active is None:
        run = get_object_or_404(LoadTestRun, pk=pk)
        return JsonResponse({"running": False, "status": run.status})
    try:
        since = float(request.GET["since"]) if request.GET.get("since") else None
    except ValueError:
        since = None
    progress = active.progress()
    return JsonResponse({"running": True, "status": "running", "progress": progress,
                         "live": active.metrics.live(),
                         "recent": active.metrics.recent(since)})
