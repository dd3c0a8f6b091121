"""The demo data set loads for any seed: every ticket path it drives is one the domain allows."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cli.demo import load_demo


@pytest.mark.parametrize("seed", [7, 11])
def test_demo_data_loads_for_any_seed(ledger, seed):
    # Seed 11 draws a high-risk "general" ticket, which must wait for a second reviewer.
    counts = load_demo(ledger, customers=10, interactions=400, seed=seed,
                       now=datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc))
    assert counts["interactions"] == 400
    assert counts["tickets"] > 0
    assert ledger.recorder.max_notification_id() > 400
