from __future__ import annotations

from functools import cache

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction as db_transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join

from . import services
from .forms import (
    SECRET_FIELDS,
    ConnectorInlineFormSet,
    CreateStationsForm,
    EvseInlineFormSet,
    StationForm,
    StationTemplateForm,
    clear_field_name,
)
from .models import (
    ApiToken,
    Connector,
    DeviceModelValue,
    Evse,
    LoadTestRun,
    Scenario,
    Station,
    StationTemplate,
)


def _secret_status(obj, name: str) -> str:
    return "Set" if obj is not None and getattr(obj, name) else "Not set"


class SecretFieldsAdminMixin:
    """Lays out the write-only password and private key.

    Editors get an empty input plus a "remove" checkbox; view-only users get "Set" or
    "Not set", because read-only admin fields would otherwise print the stored value.
    """

    readonly_fields = ("password_status", "client_key_status")

    @admin.display(description="password")
    def password_status(self, obj):
        return _secret_status(obj, "password")

    @admin.display(description="client private key")
    def client_key_status(self, obj):
        return _secret_status(obj, "client_key")

    def _can_edit(self, request, obj) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def with_secret_fields(self, request, obj, fields: list[str]) -> list[str]:
        can_edit = self._can_edit(request, obj)
        result = []
        for name in fields:
            if name not in SECRET_FIELDS:
                result.append(name)
            elif not can_edit:
                result.append(f"{name}_status")
            else:
                result.append(name)
                if obj is not None and getattr(obj, name):
                    result.append(clear_field_name(name))
        return result


class AtLeastOneInline(admin.TabularInline):
    min_num = 1
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        # The admin does not pass validate_min on from the inline's attributes, and without
        # it min_num only decides how many blank forms are shown.
        return super().get_formset(request, obj, validate_min=True, **kwargs)


class EvseInline(AtLeastOneInline):
    model = Evse
    formset = EvseInlineFormSet
    fields = ["evse_id", "max_power_kw", "phases", "voltage", "connector_summary"]
    readonly_fields = ["connector_summary"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("connectors")

    @admin.display(description="connectors")
    def connector_summary(self, obj):
        if obj is None or obj.pk is None:
            return "One cType2 connector; edit it after saving."
        connectors = format_html_join(
            ", ", "{}: {}", ((c.connector_id, c.connector_type) for c in obj.connectors.all())
        )
        url = reverse("admin:stations_evse_change", args=[obj.pk])
        return format_html('{} (<a href="{}">edit</a>)', connectors or "none", url)


class DeviceModelValueInline(admin.TabularInline):
    model = DeviceModelValue
    fields = ["key", "shown_value", "updated_at"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "device-model values changed by the CSMS"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="value")
    def shown_value(self, obj):
        # BasicAuthPassword is write-only in OCPP; keep it out of the page like the password.
        if "password" in obj.key.lower():
            return "•••••• (hidden)"
        return obj.value


# Admin actions wait for each station's answer; beyond this, use the dashboard.
ACTION_LIMIT = 100


@admin.register(Station)
class StationAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):
    form = StationForm
    list_display = [
        "station_id",
        "csms_url",
        "security_profile",
        "enabled",
        "status",
        "evse_count",
        "shard",
    ]
    list_filter = ["enabled", "status", "online", "security_profile", "boot_status", "template"]
    actions = ["connect", "disconnect", "reboot"]
    search_fields = ["station_id"]
    list_per_page = 100
    readonly_fields = (
        *SecretFieldsAdminMixin.readonly_fields,
        "online",
        "boot_status",
        "last_seen",
        "created_at",
    )
    inlines = [EvseInline, DeviceModelValueInline]

    def get_fieldsets(self, request, obj=None):
        connection = self.with_secret_fields(
            request,
            obj,
            ["csms_url", "security_profile", "password", "ca_cert", "client_cert", "client_key"],
        )
        fieldsets = [
            (None, {"fields": ["station_id", "enabled", "template"]}),
            ("Connection to the CSMS", {"fields": connection}),
            (
                "Reported in BootNotification",
                {"fields": ["vendor", "model", "serial_number", "firmware_version"]},
            ),
        ]
        if obj is not None:
            fieldsets.append(
                ("Runtime state", {"fields": ["online", "boot_status", "last_seen", "created_at"]})
            )
        return fieldsets

    def get_inlines(self, request, obj):
        # A new station has no device-model values yet.
        return self.inlines if obj is not None else [EvseInline]

    def get_queryset(self, request):
        # A correlated subquery is only evaluated for the rows on the page, unlike a
        # GROUP BY over the whole fleet.
        evses = (
            Evse.objects.filter(station=OuterRef("pk"))
            .order_by()
            .values("station")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(evse_count=Coalesce(Subquery(evses, output_field=IntegerField()), 0))
        )

    @admin.display(description="EVSEs", ordering="evse_count")
    def evse_count(self, obj):
        return obj.evse_count

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The engine picks up new or changed stations once the rows are committed.
        db_transaction.on_commit(services.stations_changed)

    def delete_queryset(self, request, queryset):
        shards = set(queryset.values_list("shard", flat=True))
        super().delete_queryset(request, queryset)
        db_transaction.on_commit(lambda: services.stations_removed(shards))

    def delete_model(self, request, obj):
        shard = obj.shard
        super().delete_model(request, obj)
        db_transaction.on_commit(lambda: services.stations_removed({shard}))

    def _command(self, request, queryset, command: str):
        stations = list(queryset.values_list("station_id", flat=True)[: ACTION_LIMIT + 1])
        if len(stations) > ACTION_LIMIT:
            self.message_user(request, f"Select at most {ACTION_LIMIT} stations.", messages.ERROR)
            return
        outcomes = [(sid, services.send_command(sid, command)) for sid in stations]
        failed = [f"{sid}: {o['status']} {o['detail']}".strip() for sid, o in outcomes
                  if not o["ok"]]
        done = len(outcomes) - len(failed)
        if done:
            self.message_user(request, f"{command}: done for {done} station(s).")
        for line in failed[:20]:
            self.message_user(request, f"{command} failed for {line}", messages.WARNING)

    @admin.action(description="Connect to the CSMS", permissions=["change"])
    def connect(self, request, queryset):
        self._command(request, queryset, "connect")

    @admin.action(description="Disconnect from the CSMS", permissions=["change"])
    def disconnect(self, request, queryset):
        self._command(request, queryset, "disconnect")

    @admin.action(description="Reboot", permissions=["change"])
    def reboot(self, request, queryset):
        self._command(request, queryset, "reboot")


class ConnectorInline(AtLeastOneInline):
    model = Connector
    formset = ConnectorInlineFormSet
    fields = ["connector_id", "connector_type", "max_power_kw"]


@admin.register(Evse)
class EvseAdmin(admin.ModelAdmin):
    """Edits one EVSE's connectors; EVSEs are added and removed on their station's page."""

    list_display = ["__str__", "station", "evse_id", "max_power_kw", "phases", "voltage"]
    list_select_related = ["station"]
    search_fields = ["station__station_id"]
    fields = ["station_link", "evse_id", "max_power_kw", "phases", "voltage"]
    # Renumbering happens on the station page, where the formset checks for clashes.
    readonly_fields = ["station_link", "evse_id"]
    inlines = [ConnectorInline]

    def get_model_perms(self, request):
        # Keeps EVSEs off the admin index; they are reached from their station.
        return {}

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="station")
    def station_link(self, obj):
        url = reverse("admin:stations_station_change", args=[obj.station_id])
        return format_html('<a href="{}">{}</a>', url, obj.station)

    def response_change(self, request, obj):
        if "_continue" in request.POST:
            return super().response_change(request, obj)
        self.message_user(request, f"Saved {obj}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:stations_station_change", args=[obj.station_id]))


_CREATE_STATIONS_PAGE = """
{% extends "admin/base_site.html" %}
{% load admin_urls %}
{% block title %}Create stations from {{ template }} | {{ site_title }}{% endblock %}
{% block breadcrumbs %}
<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">Home</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">
{{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">
{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; Create stations from {{ template }}
</div>
{% endblock %}
{% block content %}
<p>Each station gets an id from the pattern <code>{{ template.id_pattern }}</code>
(the first one is <code>{{ first_id }}</code>), {{ template.evse_count }}
EVSE{{ template.evse_count|pluralize }} with {{ template.connectors_per_evse }}
{{ template.connector_type }} connector{{ template.connectors_per_evse|pluralize }} each, and
the template's connection settings. Nothing is created if any of the ids already exists.</p>
<form method="post">{% csrf_token %}
{{ form.non_field_errors }}
<fieldset class="module aligned">
{% for field in form %}
<div class="form-row{% if field.errors %} errors{% endif %}">
{{ field.errors }}
<div class="flex-container">{{ field.label_tag }} {{ field }}</div>
<div class="help" id="{{ field.auto_id }}_helptext">{{ field.help_text }}</div>
</div>
{% endfor %}
</fieldset>
<input type="hidden" name="action" value="create_stations">
<input type="hidden" name="{{ action_checkbox_name }}" value="{{ template.pk }}">
<div class="submit-row">
<input type="submit" name="apply" value="Create stations" class="default">
<a href="{% url opts|admin_urlname:'changelist' %}" class="closelink">Cancel</a>
</div>
</form>
{% endblock %}
"""


@cache
def _create_stations_page():
    return engines["django"].from_string(_CREATE_STATIONS_PAGE)


@admin.register(StationTemplate)
class StationTemplateAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):
    form = StationTemplateForm
    list_display = [
        "name",
        "id_pattern",
        "csms_url",
        "security_profile",
        "evse_count",
        "connectors_per_evse",
        "station_count",
    ]
    search_fields = ["name"]
    actions = ["create_stations"]

    def get_fieldsets(self, request, obj=None):
        connection = self.with_secret_fields(
            request,
            obj,
            ["csms_url", "security_profile", "password", "ca_cert", "client_cert", "client_key"],
        )
        return [
            (None, {"fields": ["name", "id_pattern"]}),
            ("Connection to the CSMS", {"fields": connection}),
            ("Reported in BootNotification", {"fields": ["vendor", "model", "firmware_version"]}),
            (
                "EVSEs and connectors",
                {
                    "fields": [
                        "evse_count",
                        "connectors_per_evse",
                        "connector_type",
                        "max_power_kw",
                    ]
                },
            ),
        ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(station_count=Count("stations"))

    @admin.display(description="stations", ordering="station_count")
    def station_count(self, obj):
        return obj.station_count

    def has_create_stations_permission(self, request):
        return all(
            request.user.has_perm(f"stations.add_{model}")
            for model in ("station", "evse", "connector")
        )

    @admin.action(description="Create stations from this template", permissions=["create_stations"])
    def create_stations(self, request, queryset):
        templates = list(queryset[:2])
        if len(templates) != 1:
            self.message_user(
                request, "Select exactly one template to create stations from.", messages.WARNING
            )
            return None
        template = templates[0]

        if "apply" in request.POST:
            form = CreateStationsForm(request.POST)
            if form.is_valid():
                try:
                    created = template.create_stations(
                        form.cleaned_data["count"], start=form.cleaned_data["start"]
                    )
                except ValidationError as e:
                    for message in e.messages:
                        self.message_user(request, message, messages.ERROR)
                else:
                    db_transaction.on_commit(services.stations_changed)
                    self.message_user(
                        request,
                        f"Created {created:,} stations from “{template}”.",
                        messages.SUCCESS,
                    )
                    url = reverse("admin:stations_station_changelist")
                    return HttpResponseRedirect(f"{url}?template__id__exact={template.pk}")
        else:
            form = CreateStationsForm(initial={"start": template.stations.count() + 1})

        start = form["start"].value()
        try:
            first_id = template.station_id_for(int(start))
        except (TypeError, ValueError):
            first_id = template.station_id_for(1)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Create stations from {template}",
            "opts": self.opts,
            "template": template,
            "form": form,
            "first_id": first_id,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, _create_stations_page(), context)


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    """Scenario definitions; a definition that does not parse is a field error (Model.clean)."""

    list_display = ["name", "format", "updated_at"]
    search_fields = ["name"]


@admin.register(LoadTestRun)
class LoadTestRunAdmin(admin.ModelAdmin):
    """Runs are made by `manage.py loadtest` or the dashboard; here they are only read."""

    list_display = ["pk", "scenario_name", "station_count", "status", "created_at"]
    list_filter = ["status", "scenario_name"]
    exclude = ["password", "client_key"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


_TOKEN_CREATED_PAGE = """
{% extends "admin/base_site.html" %}
{% load admin_urls %}
{% block title %}API token created | {{ site_title }}{% endblock %}
{% block breadcrumbs %}
<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">Home</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">
{{ opts.verbose_name_plural|capfirst }}</a> &rsaquo; {{ token }}
</div>
{% endblock %}
{% block content %}
<p>The API token “{{ token.name }}” for {{ token.user }} is:</p>
<p><input type="text" readonly size="60" value="{{ plain }}" id="api-token"
   onfocus="this.select()"></p>
<p><strong>Copy it now: it is not shown again.</strong> Only its SHA-256 is stored.
Send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<p><a href="{% url opts|admin_urlname:'changelist' %}">Back to the API tokens</a></p>
{% endblock %}
"""


@cache
def _token_created_page():
    return engines["django"].from_string(_TOKEN_CREATED_PAGE)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens for the REST API. Superusers issue them for anyone, other users for themselves."""

    list_display = ["name", "user", "shown_prefix", "state", "created_at", "last_used_at",
                    "expires_at"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["name", "user__username", "prefix"]
    actions = ["revoke"]

    @admin.display(description="token")
    def shown_prefix(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="state")
    def state(self, obj):
        return obj.state

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "shown_prefix", "state", "created_at", "last_used_at",
                "expires_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "shown_prefix", "state", "created_at", "last_used_at", "revoked_at"]

    def get_queryset(self, request):
        tokens = super().get_queryset(request).select_related("user")
        return tokens if request.user.is_superuser else tokens.filter(user=request.user)

    def get_changeform_initial_data(self, request):
        return {"user": request.user.pk}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            if not request.user.is_superuser:
                obj.user = request.user
            obj.plain_token = obj.issue()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        # The one time the token is seen: on this page, never in a message or a redirect.
        response = TemplateResponse(request, _token_created_page(), {
            **self.admin_site.each_context(request), "opts": self.opts, "token": obj,
            "plain": obj.plain_token, "title": "API token created"})
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {revoked} token(s).")
