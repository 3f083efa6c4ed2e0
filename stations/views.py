"""Dashboard pages and the JSON endpoints their scripts call. All need a login."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from . import embedded, services
from .consumers import station_rows
from .engine import id_tokens
from .models import Frame, Station, Transaction
from .series import TX_MAX_POINTS, TX_STEP_S, transaction_series

PAGE_SIZE_MAX = 200
STATION_COMMANDS = {"connect", "disconnect", "reboot"}
EVSE_COMMANDS = {"plug_in", "unplug", "present_id_token", "start_charging", "stop_charging",
                 "set_fault", "clear_fault"}
# The authorization panel's driver controls (C02-C07) and what each takes besides evse_id:
# the field and the idToken type its value is.
AUTH_COMMANDS = {"enter_pin": ("pin", "KeyCode"), "present_contract": ("emaid", "eMAID"),
                 "pay_by_card": None, "press_start_button": None}
EVSE_COMMANDS |= set(AUTH_COMMANDS)


def _page_context() -> dict:
    return {"id_tokens": settings.FLEET_DEMO_ID_TOKENS, "id_token_types": id_tokens.TYPES,
            "default_id_token_type": id_tokens.DEFAULT_TYPE,
            "embedded": embedded.sandbox() is not None,
            # The page draws live chart points on the grid the server keeps (stations.series).
            "chart_grid": {"step": TX_STEP_S, "max_points": TX_MAX_POINTS}}


@login_required
def index(request):
    return render(request, "dashboard/index.html", _page_context())


@login_required
def station_detail(request, station_id):
    if not Station.objects.filter(station_id=station_id).exists():
        raise Http404("No such station")
    return render(request, "dashboard/station.html", {**_page_context(), "station_id": station_id})


@login_required
@require_GET
def api_stations(request):
    stations = Station.objects.filter(enabled=True).order_by("station_id")
    status = request.GET.get("status", "")
    if status == "Offline":
        stations = stations.filter(Q(online=False) | Q(status="Offline"))
    elif status:
        stations = stations.filter(online=True, status=status)
    if query := request.GET.get("q", "").strip():
        stations = stations.filter(station_id__icontains=query)
    try:
        size = min(max(int(request.GET.get("size", 50)), 1), PAGE_SIZE_MAX)
        number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        return HttpResponseBadRequest("page and size are numbers")
    paginator = Paginator(stations.values_list("station_id", flat=True), size)
    page = paginator.get_page(number)
    ids = list(page.object_list)
    rows = station_rows(ids)
    return JsonResponse({"count": paginator.count, "page": page.number,
                         "pages": paginator.num_pages, "stations": [rows[i] for i in ids]})


@login_required
@require_GET
def api_station(request, station_id):
    station = Station.objects.filter(station_id=station_id).first()
    if station is None:
        raise Http404("No such station")
    row = station_rows([station_id])[station_id]
    row.update(vendor=station.vendor, model=station.model,
               firmware_version=station.firmware_version, csms_url=station.csms_url,
               security_profile=station.security_profile)
    transactions = list(
        Transaction.objects.filter(station=station).order_by("-started_at")[:20].values(
            "transaction_id", "evse_id", "started_at", "ended_at", "energy_wh",
            "stopped_reason", "charging_state", "id_token")
    )
    # Each EVSE's chart shows its latest transaction, running or not.
    latest = {}
    for tx in transactions:
        latest.setdefault(tx["evse_id"], tx["transaction_id"])
    return JsonResponse({"station": row, "transactions": transactions,
                         "series": transaction_series(latest.values()),
                         "frames": Frame.log_of(station_id)})


def _body(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@login_required
@require_GET
async def api_variables(request, station_id):
    reply = await services.asend_command(station_id, "get_variables")
    if not reply["ok"]:
        return JsonResponse({"ok": False, "detail": reply["detail"] or reply["status"]})
    return JsonResponse({"ok": True, "variables": reply.get("data", [])})


@login_required
@require_POST
async def api_command(request, station_id):
    data = _body(request)
    command = data.get("command")
    if command not in STATION_COMMANDS | EVSE_COMMANDS:
        return JsonResponse({"ok": False, "status": "Rejected",
                             "detail": f"unknown command {command!r}"}, status=400)
    args = {}
    if command in EVSE_COMMANDS:
        try:
            args["evse_id"] = int(data.get("evse_id"))
        except (TypeError, ValueError):
            return JsonResponse({"ok": False, "status": "Rejected",
                                 "detail": "evse_id is required"}, status=400)
    if command in ("present_id_token", "start_charging"):
        token = str(data.get("id_token") or "").strip()
        token_type = str(data.get("token_type") or id_tokens.DEFAULT_TYPE)
        problem = id_tokens.problem(token_type, token)
        if problem:
            return JsonResponse({"ok": False, "status": "Rejected", "detail": problem,
                                 "field": "id_token"}, status=400)
        args.update(id_token=token, token_type=token_type)
    if AUTH_COMMANDS.get(command):
        field, token_type = AUTH_COMMANDS[command]
        value = str(data.get(field) or "").strip()
        problem = id_tokens.problem(token_type, value) if value else f"a {field} is required"
        if problem:
            return JsonResponse({"ok": False, "status": "Rejected", "detail": problem,
                                 "field": field}, status=400)
        args[field] = value
    return JsonResponse(await services.asend_command(station_id, command, **args))


@login_required
@require_GET
async def api_authorization(request, station_id):
    """The running station's authorization cache, local list and master pass."""
    reply = await services.asend_command(station_id, "get_authorization")
    if not reply["ok"]:
        return JsonResponse({"ok": False, "detail": reply["detail"] or reply["status"]})
    return JsonResponse({"ok": True, **reply.get("data", {})})


@login_required
@require_POST
async def api_fleet_command(request):
    command = _body(request).get("command")
    if command not in ("connect_all", "disconnect_all"):
        return JsonResponse({"ok": False, "count": 0}, status=400)
    count = await services.aset_fleet_online(command == "connect_all")
    return JsonResponse({"ok": True, "count": count})


@login_required
@require_POST
async def api_sandbox(request, action):
    data = _body(request)
    try:
        outcome = await embedded.remote_control(action, data)
    except LookupError as exc:
        return JsonResponse({"ok": False, "status": "Unavailable", "detail": str(exc)},
                            status=404)
    return JsonResponse(outcome)


@login_required
@require_GET
def api_sandbox_messages(request):
    sandbox = embedded.sandbox()
    if sandbox is None:
        raise Http404("The sandbox CSMS does not run in this process")
    station_id = request.GET.get("station_id") or None
    action = request.GET.get("action") or None
    items = [{"station_id": r.station_id, "action": r.action, "payload": r.payload}
             for r in sandbox.received[-2000:]
             if (station_id is None or r.station_id == station_id)
             and (action is None or r.action == action)]
    return JsonResponse({"messages": items})


@require_GET
def favicon(request):
    """Browsers and tools ask for /favicon.ico whatever the page says; served from static."""
    path = finders.find("favicon.ico")
    if path is None:
        raise Http404("No favicon")
    response = FileResponse(open(path, "rb"), content_type="image/x-icon")  # noqa: SIM115
    response["Cache-Control"] = "public, max-age=86400"
    return response


def prometheus_metrics(request):
    """For Prometheus: no login, like any exporter; keep it off the public network."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from .prometheus import registry
    from .run_views import active_metrics

    return HttpResponse(generate_latest(registry(active_metrics)),
                        content_type=CONTENT_TYPE_LATEST)
