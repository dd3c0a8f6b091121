# syntax=docker/dockerfile:1
# caseledger: one image for every process of a deployment (compose.yaml runs it as the API, the
# projection runner, the scheduler and the webhook worker; the command decides which).
#
#   docker build -t caseledger .
#   docker run --rm caseledger --version

# -- build: wheels for the project and its dependencies, with the verifier's C extension ----------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libssl-dev libsqlite3-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY domain domain
COPY ledger ledger
COPY projections projections
COPY services services
COPY api api
COPY scheduler scheduler
COPY cli cli
COPY console console
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# -- run: the wheels only, no compiler, as an unprivileged user ----------------------------------
FROM python:3.11-slim-bookworm AS run
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CASELEDGER_HOME=/var/lib/caseledger \
    PORT=8000
# libpq5: the verifier's C extension reads PostgreSQL pages with libpq (binary COPY).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 caseledger \
 && useradd --system --uid 10001 --gid caseledger --home-dir /var/lib/caseledger --shell /usr/sbin/nologin caseledger \
 && mkdir -p /var/lib/caseledger \
 && chown caseledger:caseledger /var/lib/caseledger
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /var/lib/caseledger
USER caseledger:caseledger
# Keys (key-encryption key, log signing key) and checkpoints live under CASELEDGER_HOME: mount a
# volume there and keep it private; the database is CASELEDGER_DATABASE_URL (PostgreSQL).
VOLUME ["/var/lib/caseledger"]
EXPOSE 8000
# /healthz: the process answers (no database needed). Only meaningful for the API command; compose
# turns it off for the other processes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=4)"]
ENTRYPOINT ["caseledger"]
CMD ["serve", "--prod", "--host", "0.0.0.0", "--port", "8000"]
