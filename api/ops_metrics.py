"""Operations metrics read from the ledger's database at scrape time (part of ``/metrics``, see
:mod:`api.observability`): scheduled jobs, open findings, webhook deliveries.

- **Jobs**, from the ``JobRun`` events in the log, read incrementally (each scrape reads only
  what is new): ``caseledger_job_runs_total{job, outcome}`` counts each *ended* run once, as
  ``finished`` or ``failed`` (a run's start is not an outcome: counting it too made every run
  count twice); ``caseledger_job_runs_running{job}``; ``caseledger_job_last_success_timestamp_seconds``
  and ``caseledger_job_last_duration_seconds`` (of that last successful run, recording time
  from start to finish); ``caseledger_job_last_failure_timestamp_seconds``; and
  ``caseledger_job_last_run_failed`` (1 while the latest ended run of a job failed).
- **Findings**: ``caseledger_findings_open{rule}``, findings not closed yet, from the findings read model.
- **Webhooks**: ``caseledger_webhook_deliveries{status}``, ``caseledger_webhook_delivery_failures_total``
  (failed attempts, retried or not) and ``caseledger_webhook_oldest_pending_seconds`` (the delivery
  lag: how long the oldest delivery not yet made has waited). How far the outbox is behind the log
  is its read model's ``caseledger_projection_lag{projection="webhook_outbox"}``.

Every family is reported, empty if there is nothing to count yet, so alert rules
(``deploy/prometheus-alerts.yml``) always find the names they use.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from projections.findings import FINDING_TABLE
from projections.store import ViewDatabase
from services.webhook_delivery import DELIVERY_TABLE, delivery_stats

_STARTED, _FINISHED, _FAILED = "domain.jobs:JobRun.Started", "domain.jobs:JobRun.Finished", "domain.jobs:JobRun.Failed"
PAGE = 1000


class JobRunTally:
    """What the ``JobRun`` events say per job, remembering how far it has read."""

    def __init__(self) -> None:
        self.after = 0
        self.open_runs: dict[Any, tuple[str, float]] = {}  # run id -> (job, started at), until it ends
        self.job_of: dict[Any, str] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.last_success: dict[str, float] = {}
        self.last_duration: dict[str, float] = {}
        self.last_failure: dict[str, float] = {}
        self.last_failed: dict[str, bool] = {}

    def update(self, ledger: Any) -> None:
        head = ledger.recorder.max_notification_id() or 0
        while self.after < head:
            page = ledger.recorder.select_notifications(start=self.after + 1, limit=PAGE, stop=head,
                                                        topics=[_STARTED, _FINISHED, _FAILED])
            for notification in page:
                self._apply(notification.topic, ledger.mapper.to_domain_event(notification))
            self.after = page[-1].id if len(page) == PAGE else head

    def _apply(self, topic: str, event: Any) -> None:
        run_id, at = event.originator_id, event.timestamp.timestamp()
        if topic == _STARTED:
            self.open_runs[run_id] = (event.job, at)
            self.job_of[run_id] = event.job
            return
        job, started = self.open_runs.pop(run_id, (self.job_of.get(run_id, "unknown"), None))
        self.job_of.pop(run_id, None)
        if topic == _FINISHED:
            self.counts[(job, "finished")] += 1
            self.last_success[job] = at
            if started is not None:
                self.last_duration[job] = max(at - started, 0.0)
        else:
            self.counts[(job, "failed")] += 1
            self.last_failure[job] = at
        self.last_failed[job] = topic == _FAILED

    def metrics(self) -> Iterator[Metric]:
        runs = CounterMetricFamily("caseledger_job_runs", "Ended runs of scheduled jobs by job and outcome "
                                   "(finished or failed; each run counted once)", labels=["job", "outcome"])
        for (job, outcome), count in sorted(self.counts.items()):
            runs.add_metric([job, outcome], count)
        yield runs
        running = GaugeMetricFamily("caseledger_job_runs_running", "Runs started and not ended yet", labels=["job"])
        for job, count in sorted(Counter(job for job, _ in self.open_runs.values()).items()):
            running.add_metric([job], count)
        yield running
        yield _per_job("caseledger_job_last_success_timestamp_seconds", "When the last successful run of a job "
                       "finished (recording time)", self.last_success)
        yield _per_job("caseledger_job_last_duration_seconds", "How long the last successful run of a job took",
                       self.last_duration)
        yield _per_job("caseledger_job_last_failure_timestamp_seconds", "When the last failed run of a job ended",
                       self.last_failure)
        yield _per_job("caseledger_job_last_run_failed", "1 if the latest ended run of a job failed, else 0",
                       {job: float(failed) for job, failed in self.last_failed.items()})


def _per_job(name: str, documentation: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["job"])
    for job, value in sorted(values.items()):
        family.add_metric([job], value)
    return family


class OpsCollector:
    """The findings and webhook families, read through the metrics' own read-model connection."""

    def __init__(self) -> None:
        self._tables_made = False

    def metrics(self, db: ViewDatabase) -> Iterator[Metric]:
        if not self._tables_made:  # the worker's table, so a scrape before its first pass reads zeros
            db.create_tables([DELIVERY_TABLE])
            self._tables_made = True
        with db.reading() as cur:
            open_by_rule = cur.execute(f"SELECT rule, COUNT(*) FROM {FINDING_TABLE.name} WHERE status <> 'closed' "
                                       "GROUP BY rule").fetchall()
            webhooks = delivery_stats(cur, int(time.time() * 1000))
        findings = GaugeMetricFamily("caseledger_findings_open", "Compliance findings not closed yet, by rule",
                                     labels=["rule"])
        for rule, count in sorted(open_by_rule):
            findings.add_metric([rule], count)
        yield findings
        deliveries = GaugeMetricFamily("caseledger_webhook_deliveries", "Webhook deliveries by status",
                                       labels=["status"])
        for status, count in webhooks["by_status"].items():
            deliveries.add_metric([status], count)
        yield deliveries
        yield CounterMetricFamily("caseledger_webhook_delivery_failures", "Failed webhook delivery attempts",
                                  webhooks["failures"])
        yield GaugeMetricFamily("caseledger_webhook_oldest_pending_seconds", "How long the oldest webhook delivery "
                                "not made yet has waited (the delivery lag)", webhooks["oldest_pending_seconds"])
