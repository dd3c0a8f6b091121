"""The composition root: builds the ledger and its transparency log from :class:`Settings`.

Entry points read the settings once (:meth:`ledger.settings.Settings.from_environ`) and pass them
here; a plain mapping of ``CASELEDGER_*`` variables is accepted too (tests and benchmarks).
"""

from __future__ import annotations

from typing import Mapping

from domain.policy import PolicyBook
from ledger.application import CaseLedger
from ledger.calendar import ChineseBusinessCalendar
from ledger.checkpoint_files import CheckpointArchive
from ledger.crypto import KeyEncryptionKey
from ledger.keys import LogKeys
from ledger.settings import Settings
from ledger.transparency import TransparencyLog

__all__ = ["Settings", "as_settings", "build", "transparency_log"]


def as_settings(settings: Settings | Mapping[str, str]) -> Settings:
    return settings if isinstance(settings, Settings) else Settings.from_environ(settings)


def build(settings: Settings | Mapping[str, str]) -> CaseLedger:
    """The application, configured by ``settings``."""
    settings = as_settings(settings)
    return CaseLedger(
        settings.persistence_env(),
        policies=PolicyBook.load(settings.policy_dir),
        calendar=ChineseBusinessCalendar(),
        policy_name=settings.policy_name,
        kek=KeyEncryptionKey.load(settings.kek, settings.kek_file),
        key_cache_seconds=settings.key_cache_seconds,
    )


def transparency_log(ledger: CaseLedger, settings: Settings | Mapping[str, str]) -> TransparencyLog:
    """The ledger's transparency log, signed with the keys the settings name."""
    settings = as_settings(settings)
    return TransparencyLog(ledger, LogKeys.from_settings(settings), CheckpointArchive(settings.checkpoint_dir))
