"""The composition root: builds the ledger and its transparency log from :class:`Settings`.

Entry points read the settings once (:meth:`ledger.settings.Settings.from_environ`) and pass them
here; a plain mapping of ``CASELEDGER_*`` variables is accepted too (tests and benchmarks).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Mapping

from domain.policy import PolicyBook
from ledger.application import CaseLedger, wall_clock
from ledger.calendar import ChineseBusinessCalendar
from ledger.checkpoint_files import CheckpointArchive
from ledger.crypto import KeyEncryptionKey
from ledger.database import LedgerMissing, ledger_exists, location, missing_message
from ledger.keys import LogKeys
from ledger.outage import harden
from ledger.settings import Settings, SettingsError
from ledger.transparency import TransparencyLog

__all__ = ["Settings", "as_settings", "build", "create_ledger", "transparency_log"]


def as_settings(settings: Settings | Mapping[str, str]) -> Settings:
    return settings if isinstance(settings, Settings) else Settings.from_environ(settings)


def build(settings: Settings | Mapping[str, str], *, create: bool = True,
          clock: Callable[[], datetime] = wall_clock) -> CaseLedger:
    """The application, configured by ``settings``; ``clock`` is its wall clock (tests fake it).

    ``create=False`` (every command but the few that create a ledger): the ledger must exist, and so
    must its key-encryption key, else :class:`LedgerMissing` — never a new, empty ledger or a new
    key that cannot read the old data. On PostgreSQL the database is reached once first either way,
    so an unreachable or missing database is reported at once (``ledger.database``)."""
    settings = as_settings(settings)
    policies = policy_book(settings)  # a bad setting first, before any database is looked at
    if not create:
        _require_ledger(settings)
    elif settings.backend == "postgres":
        ledger_exists(settings)
    ledger = CaseLedger(
        settings.persistence_env(),
        policies=policies,
        calendar=ChineseBusinessCalendar(),
        policy_name=settings.policy_name,
        kek=KeyEncryptionKey.load(settings.kek, settings.kek_file),
        key_cache_seconds=settings.key_cache_seconds,
        clock=clock,
        clock_skew=timedelta(seconds=settings.clock_skew_seconds),
    )
    # PostgreSQL: ping before use, reconnect by itself, and fail fast where a caller asks (ledger.outage).
    harden(ledger.recorder.datastore, settings.db_timeout_seconds)
    return ledger


def policy_book(settings: Settings) -> PolicyBook:
    """The policies in ``CASELEDGER_POLICY_DIR``, with ``CASELEDGER_POLICY`` checked: a name, or a
    ``name@version`` as ``caseledger policies`` lists them (that version then governs new cases)."""
    policies = PolicyBook.load(settings.policy_dir)
    if settings.policy_name and not policies.versions(settings.policy_name):
        known = sorted({p.name for p in policies.policies.values()} | set(policies.policies))
        raise SettingsError(f"CASELEDGER_POLICY: no policy {settings.policy_name!r}; use one of {', '.join(known)}")
    return policies


def create_ledger(settings: Settings | Mapping[str, str]) -> tuple[CaseLedger, bool]:
    """The ledger, created if there is none yet — its tables, its key-encryption key and the log's
    signing key — and whether it was created now. An existing ledger is opened as by
    ``build(create=False)``: its keys are never made anew here."""
    settings = as_settings(settings)
    if ledger_exists(settings):
        return build(settings, create=False), False
    ledger = build(settings)
    LogKeys.from_settings(settings).ensure()
    return ledger, True


def _require_ledger(settings: Settings) -> None:
    if not ledger_exists(settings):
        raise LedgerMissing(missing_message(settings))
    if settings.kek is None and not settings.kek_file.exists():
        # A new key would seal new data with it and leave the existing personal data unreadable.
        raise LedgerMissing(f"the ledger at {location(settings)} exists but its key-encryption key is not at "
                            f"{settings.kek_file} (CASELEDGER_HOME={settings.home}); point CASELEDGER_HOME or "
                            "CASELEDGER_KEK_FILE at it, or set CASELEDGER_KEK")


def transparency_log(ledger: CaseLedger, settings: Settings | Mapping[str, str]) -> TransparencyLog:
    """The ledger's transparency log, signed with the keys the settings name."""
    settings = as_settings(settings)
    return TransparencyLog(ledger, LogKeys.from_settings(settings), CheckpointArchive(settings.checkpoint_dir))
