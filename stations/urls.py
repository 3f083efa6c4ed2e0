from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="dashboard"),
    path("stations/<str:station_id>/", views.station_detail, name="station-detail"),
    path("api/stations/", views.api_stations),
    path("api/stations/<str:station_id>/", views.api_station),
    path("api/stations/<str:station_id>/variables/", views.api_variables),
    path("api/stations/<str:station_id>/command/", views.api_command),
    path("api/fleet/command/", views.api_fleet_command),
    path("api/sandbox/messages/", views.api_sandbox_messages),
    path("api/sandbox/<str:action>/", views.api_sandbox),
]
