"""Who may call the API: machines with a token, browsers with their session.

`Authorization: Bearer <token>` (or `Token <token>`) authenticates as the token's user.
A browser that is logged in to the dashboard uses its session instead, with Django's
CSRF check on every unsafe method. Anything else gets 401 and a JSON `detail`.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiToken

KEYWORDS = ("bearer", "token")


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as “Authorization: Bearer <token>”.")
        try:
            plain = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = ApiToken.authenticate(plain)
        if token is None:
            # One answer for unknown, revoked and expired: it tells a guesser nothing.
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        return token.user, token

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API token created in the admin (API tokens)."}


class ManagesStations(permissions.BasePermission):
    """Creating and deleting stations: what the admin allows the same user.

    Staff with the model permissions the admin checks (adding a station adds its EVSEs and
    connectors too). Reading and commands only need a login, as in the dashboard.
    """

    message = "Creating and deleting stations needs a staff user with the admin's permissions."
    needs = {
        "POST": ("stations.add_station", "stations.add_evse", "stations.add_connector"),
        "DELETE": ("stations.delete_station",),
    }

    def has_permission(self, request, view):
        wanted = self.needs.get(request.method)
        if wanted is None:
            return True
        user = request.user
        return bool(user and user.is_staff and user.has_perms(wanted))
