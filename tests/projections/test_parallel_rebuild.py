"""Rebuilding read models in parallel processes (projections/parallel.py) gives what one process gives."""

from __future__ import annotations

import pytest
from read_model_fixtures import BrokenTicketList

from projections.catalog import PROJECTIONS, runner_for
from projections.event_counts import EventCounts
from projections.parallel import balanced_groups
from projections.runtime import ProjectionFailed, ProjectionRunner


def test_a_rebuild_in_processes_equals_one_in_this_process(ledger, scenario):
    runner = runner_for(ledger, batch_size=7)
    read_alone = runner.rebuild()
    alone = runner.digests()
    progress: list[int] = []
    read = runner.rebuild(workers=3, progress=progress.append)
    assert runner.digests() == alone
    assert read == read_alone and sum(progress) == read_alone  # the progress bar of the slowest worker
    head = ledger.recorder.max_notification_id()
    assert all(position == head for position in runner.positions().values())
    runner.close()


def test_rebuilding_some_read_models_in_processes_leaves_the_others_alone(ledger, scenario):
    runner = runner_for(ledger, batch_size=5)
    runner.catch_up()
    before = runner.digests()
    runner.rebuild(["ticket_list", "kpi_counters"], workers=2)
    assert runner.digests() == before
    runner.close()


def test_a_worker_that_fails_names_the_event_and_the_others_finish(ledger, scenario):
    runner = ProjectionRunner(ledger, [BrokenTicketList(ledger), EventCounts(ledger)], batch_size=4)
    classified = [pos for pos, e in ledger.log(limit=1000) if type(e).__qualname__ == "Ticket.Classified"]
    with pytest.raises(ProjectionFailed) as failure:
        runner.rebuild(workers=2)
    assert failure.value.projection == "broken_ticket_list" and failure.value.position == classified[0]
    assert failure.value.topic == "domain.ticket:Ticket.Classified" and "bug in handler" in str(failure.value)
    positions = runner.positions()
    assert positions["broken_ticket_list"] < classified[0]
    assert positions["event_counts"] == ledger.recorder.max_notification_id()
    runner.close()


def test_groups_split_the_read_models_once_each_by_weight(ledger):
    projections = [cls(ledger) for cls in PROJECTIONS]
    for workers in (1, 2, 3, len(projections), 20):
        groups = balanced_groups(projections, workers)
        assert len(groups) == min(workers, len(projections)) and all(groups)
        assert sorted(p.name for g in groups for p in g) == sorted(p.name for p in projections)
    heaviest = max(projections, key=lambda p: p.rebuild_weight)
    assert [heaviest] in balanced_groups(projections, len(projections))
