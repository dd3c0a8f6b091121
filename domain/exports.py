"""Export jobs (导出作业): an auditor's request for a sealed bundle, made in the background.

Requested → completed (the archive's file name and SHA-256, the number of events) or failed (the
reason). Every download of a completed bundle is an event too, so who took a copy of what is as
auditable as the records themselves. A job that a restart interrupted stays ``requested`` with no
worker; the API reports it as interrupted and the auditor requests a new one.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import InvalidValue, require
from domain.policy import Policy

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ExportJob(Case):
    @event("Requested")
    def __init__(self, id: UUID, scope: dict[str, Any], requested_by: str, policy_ref: str, meta: dict[str, Any]):
        self.scope = scope
        self.requested_by = requested_by
        self.policy_ref = policy_ref
        self.status = "requested"
        self.file_name: str | None = None
        self.sha256: str | None = None
        self.events = 0
        self.reason: str | None = None
        self.downloads = 0

    @classmethod
    def request(cls, *, id: UUID, scope: dict[str, Any], policy: Policy, ctx: Context) -> ExportJob:
        require(bool(scope.get("kind")), "an export names its scope", rule="export.scope")
        return cls(id=id, scope=dict(scope), requested_by=ctx.actor_id, policy_ref=policy.ref,
                   meta=ctx.meta(policy.ref))

    def complete(self, *, file_name: str, sha256: str, events: int, ctx: Context) -> None:
        self._require_status({"requested"}, "complete", rule="export.finish_once")
        if not _SHA256.fullmatch(sha256 or ""):
            raise InvalidValue("sha256 is a SHA-256 in lowercase hex", rule="export.hash")
        self._completed(file_name, sha256, int(events), self._meta(ctx))

    @event("Completed")
    def _completed(self, file_name: str, sha256: str, events: int, meta: dict[str, Any]) -> None:
        self.file_name, self.sha256, self.events = file_name, sha256, events
        self.status = "completed"

    def fail(self, *, reason: str, ctx: Context) -> None:
        self._require_status({"requested"}, "fail", rule="export.finish_once")
        require(bool(reason), "a failed export needs its reason", rule="export.fail_reason")
        self._failed(reason[:2000], self._meta(ctx))

    @event("Failed")
    def _failed(self, reason: str, meta: dict[str, Any]) -> None:
        self.reason = reason
        self.status = "failed"

    def record_download(self, ctx: Context) -> None:
        self._require_status({"completed"}, "download", rule="export.download_completed")
        self._downloaded(self._meta(ctx))

    @event("Downloaded")
    def _downloaded(self, meta: dict[str, Any]) -> None:
        self.downloads += 1
