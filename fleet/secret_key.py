"""Django's SECRET_KEY: the operator's, or one made and kept for the embedded demo.

It signs the sessions and CSRF tokens of the dashboard, so a key anyone can read in this
repository (or in docker-compose's old default) would let anyone forge a login. Scale-out
mode refuses to start without a strong DJANGO_SECRET_KEY (every web process needs the
same one); with DJANGO_DEBUG it only warns. The embedded demo makes a random key once and
keeps it in var/secret-key.txt (mode 0600), so logins survive a restart.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from fleet.env import env

# Keys this project once shipped as defaults: public, so as good as none.
PUBLIC_KEYS = {"change-me-in-production", "insecure-local-demo-key-set-DJANGO_SECRET_KEY"}
MIN_LENGTH = 32
HOW = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'


def weakness(key: str) -> str | None:
    if key in PUBLIC_KEYS:
        return "it is a published default"
    if len(key) < MIN_LENGTH or len(set(key)) < 5:
        return f"it is shorter than {MIN_LENGTH} characters or has too few distinct ones"
    return None


def secret_key(var_dir: Path, *, scale_out: bool, debug: bool) -> str:
    key = env("DJANGO_SECRET_KEY")
    if key:
        problem = weakness(key)
        if problem is None:
            return key
        if scale_out and not debug:
            raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is not secret: {problem}. Set a "
                                       f"long random one, e.g. from {HOW}")
        _warn(f"DJANGO_SECRET_KEY is weak ({problem}): logins can be forged.")
        return key
    if scale_out:
        if not debug:
            raise ImproperlyConfigured(
                "Scale-out mode needs DJANGO_SECRET_KEY, the same on every web process "
                f"(it signs logins). Make one with {HOW}")
        _warn("DJANGO_SECRET_KEY is not set: a throw-away key is used (DJANGO_DEBUG).")
        return secrets.token_urlsafe(50)
    return _kept_key(var_dir / "secret-key.txt")


def _kept_key(path: Path) -> str:
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    # Created private: the key never sits on disk readable by others.
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(key + "\n")
    return key


def _warn(text: str) -> None:
    sys.stderr.write(f"\n{'!' * 78}\nWARNING: {text}\n{'!' * 78}\n\n")
