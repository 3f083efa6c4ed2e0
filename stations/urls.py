from django.urls import path

from . import run_views, views

urlpatterns = [
    path("", views.index, name="dashboard"),
    path("stations/<str:station_id>/", views.station_detail, name="station-detail"),
    path("api/stations/", views.api_stations),
    path("api/stations/<str:station_id>/", views.api_station),
    path("api/stations/<str:station_id>/variables/", views.api_variables),
    path("api/stations/<str:station_id>/command/", views.api_command),
    path("api/stations/<str:station_id>/authorization/", views.api_authorization),
    path("api/fleet/command/", views.api_fleet_command),
    path("api/sandbox/messages/", views.api_sandbox_messages),
    path("api/sandbox/<str:action>/", views.api_sandbox),
    path("runs/", run_views.run_list, name="runs"),
    path("runs/new/", run_views.run_start),
    path("runs/compare/", run_views.run_compare),
    path("runs/<int:pk>/", run_views.run_detail, name="run-detail"),
    path("runs/<int:pk>/stop/", run_views.run_stop),
    path("runs/<int:pk>/live.json", run_views.run_live),
    path("runs/<int:pk>/report.<str:fmt>", run_views.run_download),
    path("metrics", views.prometheus_metrics),
    path("favicon.ico", views.favicon),
]
