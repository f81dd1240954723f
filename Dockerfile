# syntax=docker/dockerfile:1
# Task Delay Service: one image for every process of the Procfile (web, worker, beat, migrate).
#   docker build -t task-delay-service .
#   docker compose up --build        (the full stack: docker-compose.yml)

# --- build: the virtualenv with every dependency (pip and its caches stay in this stage) -------
# Every dependency ships manylinux wheels (psycopg[binary], uvloop, orjson, aiohttp): nothing
# compiles. If one ever needs a compiler, install it here, never in the final stage.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
# A layer of its own: code changes do not reinstall the dependencies.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.txt

# --- runtime: slim, no compilers, not root ----------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/var/lib/tds \
    STATIC_ROOT=/opt/tds/static \
    BIND_ADDRESS=0.0.0.0 \
    PORT=8000 \
    DJANGO_DEBUG=false
RUN groupadd --system --gid 10001 tds \
 && useradd --system --uid 10001 --gid tds --home-dir /opt/tds --shell /usr/sbin/nologin tds \
 && mkdir -p /var/lib/tds /opt/tds/static \
 && chown tds:tds /var/lib/tds
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/tds
COPY --chown=root:root . .
# Static files are part of the image (whitenoise serves them); a throwaway key for the build only.
RUN DJANGO_SECRET_KEY=collectstatic-only DATA_DIR=/tmp/build-data \
    python manage.py collectstatic --noinput -v 0 \
 && rm -rf /tmp/build-data \
 && chmod +x entrypoint.sh
USER 10001:10001
EXPOSE 8000
# Celery's warm shutdown (finish the current batch) is SIGTERM; gunicorn stops gracefully on it too.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT','8000'), timeout=2).status == 200 else 1)"]
ENTRYPOINT ["./entrypoint.sh"]
# The Procfile's `web` line; compose and Kubernetes pass the other lines as the command.
CMD ["web"]
