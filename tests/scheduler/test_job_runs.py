"""Job runs are events (started, finished with counts, failed with reason); the other jobs; triggers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from click.testing import CliRunner
from sched_support import T0, moment, tamper_event

from cli.main import main
from domain.jobs import JobRun
from ledger.bootstrap import transparency_log
from ledger.keys import LogKeys
from ledger.settings import Settings
from scheduler.jobs import REGISTRY, JobSpec
from scheduler.process import SchedulerSettings, latest_slot, make_trigger
from scheduler.runner import abandon_orphans, run_job


def test_a_run_is_started_then_finished_or_failed_and_a_slot_runs_once(ledger, env, jobs, monkeypatch):
    done = run_job(ledger, "sla_clocks", moment(10), settings=env)
    assert done.status == "finished" and done.counts["cases_checked"] == 0
    run = ledger.get("job_run", done.run_id)
    assert (run.job, run.trigger, run.status, run.counts) == ("sla_clocks", "manual", "finished", done.counts)

    def broken(jc):  # noqa: ANN001, ANN202
        raise RuntimeError("the disk is full")

    monkeypatch.setitem(REGISTRY, "broken", JobSpec("broken", broken, "every 1h", 60, True, "fails", "test"))
    failed = run_job(ledger, "broken", moment(20), settings=env)
    assert failed.status == "failed" and failed.reason == "RuntimeError: the disk is full"
    assert ledger.get("job_run", failed.run_id).reason == failed.reason

    slot = moment(30)
    first = run_job(ledger, "sla_clocks", slot, run_id=JobRun.scheduled_id("sla_clocks", slot), trigger="schedule",
                    settings=env)
    again = run_job(ledger, "sla_clocks", slot, run_id=JobRun.scheduled_id("sla_clocks", slot), trigger="schedule",
                    settings=env)
    assert (first.status, again.status) == ("finished", "skipped")
    assert len(jobs.events("JobRun.Started")) == 3 and len(jobs.events("JobRun.Finished")) == 2


def test_jobs_run_and_history_on_the_command_line(ledger, token_env, at, customer):
    admin = token_env("administrator", "ops-zhang")
    ledger.open_ticket(at(0), customer_id=customer, channel="phone")
    refused = CliRunner().invoke(main, ["jobs", "run", "sla_clocks"], env=token_env("agent"))
    assert refused.exit_code == 1 and "may not jobs.run" in refused.stderr
    result = CliRunner().invoke(main, ["jobs", "run", "sla_clocks", "--as-of", moment(20).isoformat()], env=admin)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["status"] == "finished" and outcome["counts"]["breaches"] == 1  # first response, 15 min
    assert outcome["status"] == "finished"
    history = CliRunner().invoke(main, ["jobs", "history", "--json"], env=admin)
    rows = [json.loads(line) for line in history.output.splitlines()]
    assert [(r["job"], r["trigger_kind"], r["status"], r["as_of"]) for r in rows] == [
        ("sla_clocks", "manual", "finished", "2025-09-01T01:20:00.000000Z")]
    unknown = CliRunner().invoke(main, ["jobs", "run", "no_such_job"], env=admin)
    assert unknown.exit_code == 2 and "no job 'no_such_job'" in unknown.output


def test_kpi_report_writes_every_day_since_the_last_report(ledger, env, jobs, at, customer, tmp_path):
    ledger.open_ticket(at(0), customer_id=customer, channel="phone")
    first = jobs.run("kpi_report", when=datetime(2025, 9, 2, 0, 30, tzinfo=T0.tzinfo))
    assert first.details["days"] == ["2025-09-01"]
    report = first.details["reports"]["2025-09-01"]
    data = json.loads(open(report["json"], encoding="utf-8").read())
    assert data["from"] == "2025-09-01" and [g["group"] for g in data["groups"]] == ["phone"]
    assert open(report["csv"], encoding="utf-8").readline().startswith("group,kpi,value")
    later = jobs.run("kpi_report", when=datetime(2025, 9, 4, 0, 30, tzinfo=T0.tzinfo))  # two nights missed
    assert later.details["days"] == ["2025-09-02", "2025-09-03"]


def test_integrity_job_verifies_incrementally_and_signs_only_what_verified(ledger, env, jobs, at, customer,
                                                                          database_url):
    LogKeys.from_settings(Settings.from_environ(env)).init()
    log = transparency_log(ledger, env)
    first = jobs.run("integrity", 60)
    assert first.details["integrity_ok"] and first.details["verified_from"] == 0
    assert first.counts["checkpoint_size"] == first.details["verified_size"] == log.size() - 1  # then: Finished
    kept = Settings.from_environ(env).checkpoint_dir / "latest.note"  # published outside the database too
    assert kept.read_text(encoding="utf-8") == log.latest_note()
    ticket = ledger.open_ticket(at(70), customer_id=customer, channel="web")
    second = jobs.run("integrity", 120)
    assert second.details["integrity_ok"] and second.details["verified_from"] == first.details["verified_size"]
    assert second.counts["checkpoints_checked"] == 1  # the one the first run signed
    ledger.act("ticket", ticket.id, "classify", at(130), {"priority": "normal", "complexity": "general",
                                                          "high_risk": False})
    tamper_event(ledger, database_url, ledger.recorder.max_notification_id())  # not yet verified: caught
    third = jobs.run("integrity", 180)
    assert third.details["integrity_ok"] is False and third.counts["checkpoint_size"] == 0
    assert "do not hash" in third.details["problem"] or "does not match" in third.details["problem"]
    assert len(log.checkpoint_notes()) == 2  # nothing signed over a log that did not verify


def test_retention_sweep_job_proposes_through_the_retention_service(ledger, env, jobs):
    outcome = jobs.run("retention_sweep", 60)
    assert set(outcome.counts) >= {"proposed", "already_proposed", "completed"}


def test_a_new_leader_records_the_runs_its_predecessor_left_unfinished(ledger, env, jobs):
    policy = ledger.policies.in_force(moment(0), ledger.policy_name)
    orphan = JobRun.start(id=uuid4(), job="sla_clocks", trigger="schedule", instance="old-host:1", policy=policy,
                          ctx=jobs_ctx(moment(0)))
    manual = JobRun.start(id=uuid4(), job="sla_clocks", trigger="manual", instance="cli:2", policy=policy,
                          ctx=jobs_ctx(moment(0)))
    ledger._save(orphan, manual)
    assert abandon_orphans(ledger, "new-host:3", moment(5)) == 1
    failed = ledger.get("job_run", orphan.id)
    assert failed.status == "failed" and "abandoned: scheduler instance old-host:1" in failed.reason
    assert ledger.get("job_run", manual.id).status == "running"  # a manual run is nobody's to abandon
    assert abandon_orphans(ledger, "new-host:3", moment(6)) == 0


def jobs_ctx(when):  # noqa: ANN001, ANN201
    from domain.context import Context

    return Context("scheduler", "service", when, uuid4().hex)


def test_schedules_slots_and_settings():
    utc = timezone.utc
    every = make_trigger("every 15m", utc)
    assert latest_slot(every, datetime(2025, 9, 1, 10, 7, 30, tzinfo=utc)) == datetime(2025, 9, 1, 10, 0, tzinfo=utc)
    assert latest_slot(every, datetime(2025, 9, 1, 10, 15, tzinfo=utc)) == datetime(2025, 9, 1, 10, 15, tzinfo=utc)
    nightly = make_trigger("30 0 * * *", T0.tzinfo)
    assert latest_slot(nightly, datetime(2025, 9, 2, 0, 29, tzinfo=T0.tzinfo)) == datetime(2025, 9, 1, 0, 30,
                                                                                            tzinfo=T0.tzinfo)
    with pytest.raises(ValueError, match="neither"):
        make_trigger("whenever", utc)
    settings = SchedulerSettings.from_settings(Settings.from_environ({"CASELEDGER_SCHEDULE_KPI_REPORT": "off",
                                                                      "CASELEDGER_SCHEDULE_SLA_CLOCKS": "every 5s"}))
    assert "kpi_report" not in settings.schedules and settings.schedules["sla_clocks"] == "every 5s"
    assert set(settings.schedules) == set(REGISTRY) - {"kpi_report"} and settings.retry_seconds == 5
    with pytest.raises(ValueError, match="unknown job"):
        SchedulerSettings.from_settings(Settings.from_environ({"CASELEDGER_SCHEDULER_JOBS": "sla_clocks,nope"}))
    assert all(spec.misfire_grace_time > 1 and spec.why for spec in REGISTRY.values())
    assert timedelta(0) < datetime.now(utc) - latest_slot(every, datetime.now(utc)) + timedelta(seconds=1)


def test_the_last_verification_for_the_metrics_endpoint(ledger, env, jobs, database_url):
    from scheduler.metrics import last_verification

    assert last_verification(ledger) is None
    LogKeys.from_settings(Settings.from_environ(env)).init()
    jobs.run("integrity", 10)
    ok, finished = last_verification(ledger)
    assert ok and abs((datetime.now(timezone.utc) - finished).total_seconds()) < 60  # wall time it ended
    tamper_event(ledger, database_url, 1)
    jobs.run("integrity_full", 20)
    assert last_verification(ledger)[0] is False
