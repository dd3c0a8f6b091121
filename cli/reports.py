"""``caseledger report``: periodic review reports — run one now, list those issued, verify a file offline.

``report run --kind monthly --period 2026-11`` issues the signed report of that period exactly as
the scheduled job would (services.reviews): a second run for the same kind and period finds it
issued and says so. ``report verify FILE --trust KEY`` checks the file against its signed note
with a pinned key, like ``verify-bundle``: exit 0 verified, 1 does not verify, 3 not a pinned key.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from cli.context import settings
from cli.errors import OneLineError
from cli.identity import acting
from cli.params import MOMENT
from domain.reports import review_kinds
from ledger.integrity.checkpoint import CheckpointError
from ledger.integrity.report_note import ReportInvalid, verify_report
from ledger.integrity.trust import TrustSet, UntrustedSignature
from services.reviews import run_review

console = Console(stderr=True)
UNTRUSTED = 3


@click.group()
def report() -> None:
    """Periodic review reports (monthly check, quality and performance reviews, audits): signed files."""


def _kind(ledger: object, text: str, as_of: datetime) -> str:
    """The review kind named, or the one kind it begins (``monthly`` → ``monthly_check``)."""
    policy = ledger.policies.in_force(as_of, ledger.policy_name)  # type: ignore[attr-defined]
    kinds = review_kinds(policy)
    matches = [k for k in kinds if k == text] or [k for k in kinds if k.startswith(text)]
    if len(matches) != 1:
        raise click.UsageError(f"--kind {text!r} names {'no' if not matches else 'more than one'} review kind; "
                               f"kinds: {', '.join(kinds)}")
    return matches[0]


@report.command("run")
@click.option("--kind", required=True, help="Review kind (policy rule review.<kind>), or its unique beginning.")
@click.option("--period", help="2026-11 (month), 2026-Q4 (quarter), 2026 (year); default: the last complete one.")
@click.option("--as-of", type=MOMENT, help="Business time of the run (ISO 8601 with zone; default: now).")
def report_run(kind: str, period: str | None, as_of: datetime | None) -> None:
    """Issue the signed review report of a kind and period (once: a rerun finds it issued)."""
    who = acting("reports.run")
    ctx = who.context(occurred_at=as_of)
    counts, details = run_review(who.ledger, settings(), _kind(who.ledger, kind, ctx.occurred_at), period, ctx)
    state = "issued" if counts["issued"] else "already issued (nothing written)"
    console.print(f"{details['kind']} {details['period']}: {state}")
    click.echo(json.dumps(details, ensure_ascii=False, indent=2))


@report.command("list")
def report_list() -> None:
    """The review reports issued so far (kind, period, file, SHA-256), in log order."""
    who = acting("reports.read")
    after = 0
    while page := who.ledger.log(after=after, limit=1000):
        for _, event in page:
            if type(event).__qualname__ == "ReviewReport.Issued":
                click.echo(f"{event.kind}\t{event.period}\t{event.policy_ref}\t{event.file_name}\t{event.sha256}")
        after = page[-1][0]


@report.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust", "--key", "trust_file", type=click.Path(dir_okay=False, path_type=Path),
              help="File of pinned verifier keys (default: this installation's key files).")
def report_verify(file: Path, trust_file: Path | None) -> None:
    """Check a report file against its signed note (FILE.note), offline, with pinned keys."""
    from ledger.keys import KeyMissing, LogKeys

    try:
        trust = TrustSet.from_file(trust_file) if trust_file else LogKeys.from_settings(settings()).trusted()
    except (CheckpointError, KeyMissing) as e:
        raise OneLineError(str(e), 1) from None
    try:
        checked = verify_report(file, trust)
    except UntrustedSignature as e:
        raise OneLineError(f"not verified: the report is {e}", UNTRUSTED) from None
    except (ReportInvalid, CheckpointError) as e:
        raise OneLineError(f"not verified: {e}", 1) from None
    console.print(f"[bold green]OK[/] {checked['kind']} {checked['period']} sha256:{checked['sha256']} "
                  f"signed by {checked['signed_by']}")


COMMANDS = [report]
