FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLEET_VAR_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY fleet ./fleet
COPY stations ./stations
COPY templates ./templates
COPY static ./static
COPY manage.py ./
RUN pip install --no-cache-dir . \
    && python manage.py collectstatic --noinput

VOLUME /data
EXPOSE 8000
# The web process; the same image runs engine workers and beat with another command.
CMD ["sh", "-c", "python manage.py migrate --noinput && daphne -b 0.0.0.0 -p 8000 fleet.asgi:application"]
