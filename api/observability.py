"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (database usable, no read model stalled)
and ``/metrics`` (Prometheus).

The three are public by design — load balancers, orchestrators and Prometheus carry no token —
so they are answered *before* authentication (:data:`PUBLIC_PATHS`); nothing they return names
a person or a case.

What ``/metrics`` exposes:

- ``caseledger_http_request_duration_seconds{method, endpoint, status}``: a latency histogram per
  URL rule (``/tickets/<uuid:aggregate_id>``, never the raw path, so ids cannot blow up the label
  space), measured in this process;
- read from the database on each scrape, so every worker reports the same truth whichever
  process wrote it (API, scheduler, imports): events in the ledger (``caseledger_events_total``,
  the leaves of the transparency log — exact and gapless), the head of the notification log,
  each read model's position, lag and whether it is stalled (``caseledger_projection_stalled``,
  1 while an event it cannot apply stops it, see ``projections.stalls``; with the log position of
  that event in ``caseledger_projection_stalled_position``), the latest signed checkpoint and how
  many events are not yet covered by one;
- job runs by job and outcome (``caseledger_job_runs_total``, each ended run once), last success
  time and duration per job, open findings by rule, webhook deliveries: :mod:`api.ops_metrics`;
- the last verification, when the scheduler provides it: a module ``scheduler.metrics`` with
  ``last_verification(ledger) -> (ok: bool, finished_at: datetime) | None``. Until it exists
  those series are simply absent.

Several gunicorn workers are several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (the
production server sets it, see ``cli.serving``) the request histograms are written to files
there and summed over every worker at scrape time (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import importlib
import logging
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from api.ops_metrics import JobRunTally, OpsCollector
from api.problems import problem
from projections.catalog import NAMES, runner_for
from projections.runtime import ProjectionRunner
from projections.stalls import STALL_TABLE, Stall
from projections.stalls import load as load_stalls
from projections.store import ViewDatabase

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
JOB_METRICS_MODULE = "scheduler.metrics"
#: A readiness probe must answer quickly, also when the database host does not.
PROBE_CONNECT_TIMEOUT_SECONDS = "3"
#: Below this much free space where the SQLite file lives, writes are about to fail: not ready.
MIN_FREE_BYTES = 1024 * 1024
_STARTED = "caseledger.request_started"
_EXTENSION = "caseledger.observability"

REQUEST_SECONDS = Histogram(
    "caseledger_http_request_duration_seconds", "HTTP request latency by method, URL rule and status",
    ("method", "endpoint", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


def register_observability(app: Flask) -> None:
    """Time every request and serve the three public endpoints ahead of authentication."""
    app.extensions[_EXTENSION] = LedgerCollector(app.extensions["caseledger"])
    app.wsgi_app = _StartTimer(app.wsgi_app)  # type: ignore[method-assign]
    views = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}
    # Before-request functions run in order and the first response wins: ours go first, so the
    # public endpoints never reach authentication, whatever else is registered.
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: _public(views))
    app.after_request(_observe)


def _public(views: dict[str, Any]) -> Response | None:
    view = views.get(request.path)
    if view is None or request.method not in ("GET", "HEAD"):
        return None
    return view()


class _StartTimer:
    """WSGI middleware noting when a request arrived, before Flask does anything with it."""

    def __init__(self, wsgi_app: Any):
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ[_STARTED] = time.perf_counter()
        return self.wsgi_app(environ, start_response)


def _observe(response: Response) -> Response:
    req = request._get_current_object()  # the request itself, not a proxy lookup per use
    started = req.environ.get(_STARTED)
    if started is not None:
        url_rule = req.url_rule
        rule = url_rule.rule if url_rule is not None else (req.path if req.path in PUBLIC_PATHS else "<unmatched>")
        REQUEST_SECONDS.labels(req.method, rule, str(response.status_code)).observe(time.perf_counter() - started)
    return response


# -- the endpoints -------------------------------------------------------------------------------
def healthz() -> Response:
    """Liveness: the process answers. Deliberately touches nothing else."""
    return current_app.json.response({"status": "ok"})


def readyz() -> Response:
    """Readiness: the database is reachable, the ledger's tables are there and no read model is stalled."""
    ledger = current_app.extensions["caseledger"]
    failure, checks = readiness(ledger)
    if failure:
        return problem(503, "Service Unavailable", failure, type_="not-ready", headers={"Retry-After": "5"},
                       checks=checks)
    return current_app.json.response({"status": "ready", "checks": checks})


def metrics() -> Response:
    registry = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    registry.register(current_app.extensions[_EXTENSION])
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def multiprocess_mode() -> bool:
    """Whether prometheus_client counts in files shared by processes (``PROMETHEUS_MULTIPROC_DIR``
    was set when it was imported, see ``cli.serving``)."""
    return values.ValueClass is not values.MutexValue


class _ProcessRegistry:
    """Single-process mode: everything the default registry holds (our histogram, process, GC)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


# -- readiness -----------------------------------------------------------------------------------
def required_tables(ledger: Any) -> list[str]:
    from ledger.recorders import LOG_TABLES

    return [ledger.recorder.events_table_name, *LOG_TABLES]


def readiness(ledger: Any) -> tuple[str | None, dict[str, str]]:
    """(why not ready or None, one line per check). Uses a fresh connection, never the API's pool,
    so a pool that still holds a dead connection cannot make the answer lie either way."""
    settings = current_app.extensions.get("caseledger.settings")
    timeout = str(max(1, round(settings.db_timeout_seconds))) if settings else PROBE_CONNECT_TIMEOUT_SECONDS
    env = {**ViewDatabase.for_ledger(ledger).env, "POSTGRES_CONNECT_TIMEOUT": timeout}
    db = ViewDatabase(env)
    checks: dict[str, str] = {}
    try:
        if not db.postgres and not Path(env["SQLITE_DBNAME"]).is_file():
            checks["database"] = "unreachable"
            return f"database unreachable: no database file at {env['SQLITE_DBNAME']}", checks
        full = _full_disk([Path(env["SQLITE_DBNAME"]).parent] if not db.postgres else [])
        if full:  # every write would be refused (503 disk-full): not ready, and say where
            checks["disk"] = "full"
            return f"the disk holding {full} is full (less than {MIN_FREE_BYTES // 1024} KiB free)", checks
        try:
            present = _table_names(db)
        except Exception as e:  # noqa: BLE001 - any driver error means "not reachable"
            checks["database"] = "unreachable"
            return f"database unreachable: {_first_line(e)}", checks
        checks["database"] = "reachable"
        missing = [t for t in required_tables(ledger) if t not in present]
        checks["tables"] = "missing: " + ", ".join(missing) if missing else "present"
        if missing:
            return (f"the ledger's tables are missing ({', '.join(missing)}); start the application once with "
                    "table creation enabled or restore the database", checks)
        stalled = _stalled(db) if STALL_TABLE in present else []
        if stalled:  # (no "read_models" check while none is: the answer keeps its established shape)
            checks["read_models"] = "stalled: " + ", ".join(s.name for s in stalled)
            # Not ready: the views it serves stop at the stall (an operator must repair it), though
            # each read endpoint still answers, saying how far it goes.
            return "; ".join(f"read model {s.name} is {s.describe()}; fix the cause, then run 'caseledger "
                             f"projections rebuild {s.name}'" for s in stalled), checks
        return None, checks
    finally:
        db.close()


def _full_disk(folders: list[Path]) -> str | None:
    """The first folder (the SQLite database's) whose file system has almost no room left. On
    PostgreSQL the server's disk is not ours to see: a full one shows as 503 disk-full on writes."""
    for folder in folders:
        try:
            if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
                return str(folder)
        except OSError:
            continue
    return None


def _table_names(db: ViewDatabase) -> set[str]:
    with db.reading() as cur:
        if db.postgres:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (db.schema,))
        else:
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in cur.fetchall()}


def _stalled(db: ViewDatabase) -> list[Stall]:
    """The stalls of the read models this version maintains (a stall row of a retired one is history)."""
    with db.reading() as cur:
        found = load_stalls(cur, NAMES)
    return [found[name] for name in sorted(found)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


# -- metrics read from the database ---------------------------------------------------------------
class LedgerCollector:
    """Prometheus collector whose values are read from the ledger's database at scrape time."""

    def __init__(self, ledger: Any):
        self.ledger = ledger
        self.lock = threading.Lock()
        self._runner: ProjectionRunner | None = None
        self.job_runs = JobRunTally()
        self.ops = OpsCollector()  # open findings by rule, webhook deliveries (api/ops_metrics.py)

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            try:
                found = list(self._from_database())
                found += _job_metrics(self.ledger, self.job_runs)
                found += self.ops.metrics(self._runner.db) if self._runner is not None else []
            except Exception as e:  # noqa: BLE001 - a scrape reports a down database, it does not fail
                logging.getLogger("caseledger.api").warning("metrics: database not readable: %s", _first_line(e))
                self._reset()
                found = []
        yield from found
        yield GaugeMetricFamily("caseledger_database_up", "1 if this scrape could read the database", float(bool(found)))

    def _from_database(self) -> Iterator[Metric]:
        runner = self._runner = self._runner or runner_for(self.ledger)
        statuses = runner.status()
        with runner.db.reading() as cur:
            top = cur.execute("SELECT MAX(leaf_index) FROM merkle_leaves").fetchone()[0]
            latest = cur.execute("SELECT tree_size, created_at FROM merkle_checkpoints ORDER BY id DESC "
                                 "LIMIT 1").fetchone()
        events = 0 if top is None else int(top) + 1
        yield CounterMetricFamily("caseledger_events", "Events stored in the ledger (leaves of the transparency log)",
                                  events)
        head = statuses[0].head if statuses else (self.ledger.recorder.max_notification_id() or 0)
        yield GaugeMetricFamily("caseledger_log_head_position", "Highest notification id in the event log", head)
        position = GaugeMetricFamily("caseledger_projection_position", "Last log position a read model applied",
                                     labels=["projection"])
        lag = GaugeMetricFamily("caseledger_projection_lag", "Log positions a read model is behind the head",
                                labels=["projection"])
        stalled = GaugeMetricFamily("caseledger_projection_stalled",
                                    "1 if a read model is stalled on an event it cannot apply (repair: fix, then "
                                    "'caseledger projections rebuild NAME'), else 0", labels=["projection"])
        stalled_at = GaugeMetricFamily("caseledger_projection_stalled_position",
                                       "Log position of the event a stalled read model cannot apply",
                                       labels=["projection"])
        for status in statuses:
            position.add_metric([status.name], status.position)
            lag.add_metric([status.name], status.lag)
            stalled.add_metric([status.name], float(status.stall is not None))
            if status.stall is not None:
                stalled_at.add_metric([status.name], status.stall.position)
        yield position
        yield lag
        yield stalled
        yield stalled_at
        signed = int(latest[0]) if latest else 0
        yield GaugeMetricFamily("caseledger_checkpoint_tree_size", "Tree size of the latest signed checkpoint", signed)
        yield GaugeMetricFamily("caseledger_events_since_checkpoint", "Events not yet covered by a signed checkpoint",
                                max(events - signed, 0))
        if latest:
            yield GaugeMetricFamily("caseledger_checkpoint_timestamp_seconds", "When the latest checkpoint was signed",
                                    _epoch(latest[1]))

    def _reset(self) -> None:
        if self._runner is not None:
            try:
                self._runner.close()
            finally:
                self._runner = None


def _job_metrics(ledger: Any, tally: JobRunTally) -> list[Metric]:
    """Job runs from the log (:mod:`api.ops_metrics`); the last verification from the scheduler's own
    history, when it provides one."""
    tally.update(ledger)
    runs = list(tally.metrics())
    try:
        source = importlib.import_module(JOB_METRICS_MODULE)
    except ImportError:
        return runs
    last = source.last_verification(ledger)
    if last is None:
        return runs
    ok, finished_at = last
    return [*runs, GaugeMetricFamily("caseledger_verification_ok", "1 if the last full verification passed", float(ok)),
            GaugeMetricFamily("caseledger_verification_timestamp_seconds", "When the last verification finished",
                              finished_at.timestamp())]


def _epoch(value: Any) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.timestamp()

