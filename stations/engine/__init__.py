"""The charging-station engine: plain asyncio, ocpp and websockets, no Django.

It receives plain data (`StationConfig`) and reports through an event sink, so the
same code runs in a Celery worker, the web process, a benchmark or a test.
"""
