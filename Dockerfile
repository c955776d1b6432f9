# Multi-stage build: wheels are built in a throw-away stage; the runtime image has no compiler
# and runs as a non-root user. One image, three roles (docs/deploy.md): the API (the default
# command: one uvicorn process per container, scaled by running more containers, so each
# container's /metrics is its own and Prometheus adds them up), `socialwallet worker` (the
# relays and the wallet jobs) and `socialwallet migrate` (a job run before a release).
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY graphql_schema ./graphql_schema
COPY familymap ./familymap
COPY wallet ./wallet
COPY vouchers ./vouchers
COPY migrations ./migrations
# The same pinned versions as `make` and CI install (constraints.txt), not whatever is newest.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=prod \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system app && useradd --system --gid app --home-dir /srv --no-create-home app
WORKDIR /srv
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels \
    && mkdir -p /srv/var && chown app:app /srv/var  # the SQLite default, if no DATABASE_URL
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/livez').status != 200)"
CMD ["socialwallet", "serve", "--workers", "1"]
