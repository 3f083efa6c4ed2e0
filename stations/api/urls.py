"""/api/v1/: the resources, the OpenAPI schema and its docs page (served locally).

Swagger UI only: Redoc's bundle fetches its logo from Redocly's CDN at run time.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter
from rest_framework.urlpatterns import format_suffix_patterns

from .commands import (
    AuthorizationView,
    FleetCommandView,
    StationCommandView,
    StationVariablesView,
)
from .fleet import FleetView
from .runs import REPORT_FORMATS, REPORT_RENDERERS, RunViewSet
from .scenarios import ScenarioListView
from .stations import StationViewSet
from .templates import TemplateViewSet

router = SimpleRouter()
router.register("stations", StationViewSet, basename="station")
router.register("templates", TemplateViewSet, basename="template")
router.register("runs", RunViewSet, basename="run")

urlpatterns = [
    path("stations/<str:station_id>/commands/", StationCommandView.as_view()),
    path("stations/<str:station_id>/variables/", StationVariablesView.as_view()),
    path("stations/<str:station_id>/authorization/", AuthorizationView.as_view()),
    path("fleet/", FleetView.as_view()),
    path("fleet/commands/", FleetCommandView.as_view()),
    path("scenarios/", ScenarioListView.as_view()),
    # /runs/<id>/report.junit and the other formats, beside the router's /runs/<id>/report/.
    *format_suffix_patterns([path("runs/<int:pk>/report", RunViewSet.as_view(
        {"get": "report"}, renderer_classes=REPORT_RENDERERS))],
        suffix_required=True, allowed=REPORT_FORMATS),
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
