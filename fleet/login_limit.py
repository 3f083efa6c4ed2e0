"""A limit on failed logins: the dashboard's and the admin's login forms, per client.

Failures are counted in Django's cache (Redis in scale-out mode, so every web process
counts them together) for FLEET_LOGIN_WINDOW seconds from the first: FLEET_LOGIN_FAILURES
for one username from one address, four times as many for any usernames from it (one
address trying many accounts). Past that, a login from there is refused with 429, even a
correct one, until the window ends. The address is REMOTE_ADDR: behind a proxy, have it
pass the client's (Daphne's --proxy-headers).
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.shortcuts import render
from django.urls import reverse

LOGGER = logging.getLogger(__name__)

ANY_USER_FACTOR = 4


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request, username: str) -> tuple[str, str]:
    address = _address(request)
    return (f"login-failures:{address}:{username.strip().lower()[:150]}",
            f"login-failures:{address}")


def refused_for(request, username: str) -> float:
    """Seconds until a login for `username` from this client is allowed again, or 0."""
    limit = settings.FLEET_LOGIN_FAILURES
    try:
        counts = cache.get_many(_keys(request, username))
        user_key, any_key = _keys(request, username)
        over = [key for key, most in ((user_key, limit), (any_key, limit * ANY_USER_FACTOR))
                if counts.get(key, 0) >= most]
        if not over:
            return 0.0
        until = max(cache.get(f"{key}:until", 0) for key in over)
    except Exception as exc:  # noqa: BLE001 - a cache that is away must not stop logins
        LOGGER.warning("login limit: cannot read the cache: %s", exc)
        return 0.0
    return max(until - time.time(), 1.0)


@receiver(user_login_failed)
def _count_failure(sender, credentials, request=None, **kwargs):
    if request is None:
        return
    window = settings.FLEET_LOGIN_WINDOW
    try:
        for key in _keys(request, credentials.get("username", "")):
            if cache.add(key, 0, timeout=window):
                cache.set(f"{key}:until", time.time() + window, timeout=window)
            cache.incr(key)
    except Exception as exc:  # noqa: BLE001
        LOGGER.warning("login limit: cannot count a failed login: %s", exc)


@receiver(user_logged_in)
def _forget_failures(sender, request=None, user=None, **kwargs):
    if request is None or user is None:
        return
    try:
        cache.delete(_keys(request, user.get_username())[0])
    except Exception as exc:  # noqa: BLE001
        LOGGER.warning("login limit: cannot reset a count: %s", exc)


class LoginRateLimitMiddleware:
    """Refuses a login POST from a client over the limit before the password is checked.

    Sync and async: a sync-only middleware would make Django run every async view (the
    load-test runs, the commands) in a thread of its own, on a loop that ends with it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self._paths: set[str] | None = None
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._refusal(request) or self.get_response(request)

    async def __acall__(self, request):
        if self._limited(request):
            refusal = await sync_to_async(self._refusal)(request)
            if refusal is not None:
                return refusal
        return await self.get_response(request)

    def _limited(self, request) -> bool:
        if request.method != "POST":
            return False
        if self._paths is None:
            self._paths = {reverse("login"), reverse("admin:login")}
        return request.path_info in self._paths

    def _refusal(self, request):
        if not self._limited(request):
            return None
        wait = refused_for(request, request.POST.get("username", ""))
        if not wait:
            return None
        LOGGER.warning("login refused for %s: too many failed logins", _address(request))
        response = render(request, "registration/login_refused.html",
                          {"minutes": max(1, round(wait / 60))}, status=429)
        response["Retry-After"] = str(int(wait))
        return response
