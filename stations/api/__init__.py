"""The token-authenticated REST API under /api/v1/, described by an OpenAPI schema.

One module per resource (stations, station commands, fleet, templates); `urls.py`
registers them, so a new resource is a module and a line there.
"""
