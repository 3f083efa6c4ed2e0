from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/fleet/", consumers.FleetConsumer.as_asgi()),
    path("ws/stations/<str:station_id>/", consumers.StationConsumer.as_asgi()),
]
