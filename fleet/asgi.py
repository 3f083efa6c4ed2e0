import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from fleet.origins import SameOriginValidator  # noqa: E402
from stations.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    # The app serves its own static files: the dashboard needs no CDN and no proxy.
    "http": ASGIStaticFilesHandler(django_asgi_app),
    # Only this site's own pages (scheme, host and port) may open the dashboard's sockets.
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
