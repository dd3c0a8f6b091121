"""Export jobs: an auditor's bundle, made in a background thread of the process that took the request.

Why a thread and not the scheduler: an export is interactive — an auditor waits for it — while the
scheduler works on crontab slots and may not run beside every API; and nothing is lost by a thread
dying, because nothing is trusted to memory:

- the job is a ``domain.exports.ExportJob`` record: requested, then completed (file, SHA-256) or
  failed (reason); every download is an event too;
- the bundle is written under ``<home>/exports/<job>.partial/``, archived to ``<job>.tar.gz.partial``
  and only then renamed to ``<job>.tar.gz`` (atomic), and the completion event records its
  SHA-256: a download serves only a completed job's archive whose hash still matches, so a
  half-written bundle is never served;
- the worker beats a heartbeat into ``<job>.progress.json`` (done / total events, wall time); a
  job still ``requested`` whose heartbeat stopped (a restart, a crash) is reported ``interrupted``
  and the auditor requests a new one. Its partial files are left for the operator (never served).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from uuid import UUID, uuid4

from domain.context import Context
from domain.exports import ExportJob
from ledger.bootstrap import transparency_log
from ledger.settings import Settings
from services.export import Scope, write_bundle

HEARTBEAT_SECONDS = 2.0
#: A requested job whose heartbeat is older than this has no worker any more.
STALE_SECONDS = 60.0


class ExportJobs:
    def __init__(self, ledger: Any, settings: Settings, clock: Callable[[], datetime]):
        self.ledger, self.settings, self.clock = ledger, settings, clock
        self.folder = Path(settings.home) / "exports"

    def _path(self, job_id: Any, suffix: str) -> Path:
        return self.folder / f"{job_id}{suffix}"

    def request(self, scope: Scope, ctx: Context, *, background: bool = True) -> ExportJob:
        """Record the request and start its worker (``background=False``: run it here, to the end)."""
        policy = self.ledger.policies.in_force(ctx.occurred_at, self.ledger.policy_name)
        job = ExportJob.request(id=uuid4(), scope=scope.describe(), policy=policy, ctx=ctx)
        self.ledger.record(job)
        self._beat(job.id, 0, 0)
        if background:
            threading.Thread(target=self.work, args=(job.id, scope, ctx), name=f"export-{job.id}", daemon=True).start()
        else:
            self.work(job.id, scope, ctx)
        return job

    def work(self, job_id: UUID, scope: Scope, ctx: Context) -> None:
        """Write, archive and complete the job's bundle; any failure is recorded as the job's failure."""
        done = threading.Event()
        counts = [0, 0]

        def heartbeat() -> None:
            while not done.wait(HEARTBEAT_SECONDS):
                self._beat(job_id, *counts)

        threading.Thread(target=heartbeat, name=f"export-beat-{job_id}", daemon=True).start()
        partial = self._path(job_id, ".partial")
        try:
            shutil.rmtree(partial, ignore_errors=True)

            def progress(written: int, total: int) -> None:
                counts[:] = [written, total]

            log = transparency_log(self.ledger, self.settings)
            manifest = write_bundle(log, self.ledger, scope, partial / "bundle", self.clock(), progress)
            digest = self._archive(job_id, partial / "bundle")
            job = self.ledger.get("export_job", job_id)
            job.complete(file_name=f"{job_id}.tar.gz", sha256=digest, events=int(manifest["events"]),
                         ctx=self._context(ctx))
            self.ledger.record(job)
        except Exception as e:  # noqa: BLE001 - whatever stops an export is its recorded failure
            self._path(job_id, ".tar.gz").unlink(missing_ok=True)
            job = self.ledger.get("export_job", job_id)
            if job.status == "requested":
                job.fail(reason=f"{type(e).__name__}: {e}", ctx=self._context(ctx))
                self.ledger.record(job)
        finally:
            done.set()
            shutil.rmtree(partial, ignore_errors=True)
            self._beat(job_id, *counts)

    def _context(self, requested: Context) -> Context:
        """The worker's events are the requester's act, at the business clock's time now."""
        return Context(actor_id=requested.actor_id, actor_role=requested.actor_role, occurred_at=self.clock(),
                       request_id=requested.request_id)

    def _archive(self, job_id: UUID, bundle: Path) -> str:
        """``<job>.tar.gz``, complete or absent: written aside, synced, then renamed. Returns its SHA-256."""
        partial = self._path(job_id, ".tar.gz.partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(bundle, arcname=f"caseledger-bundle-{job_id}")
        with partial.open("rb") as f:
            os.fsync(f.fileno())
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        os.replace(partial, self._path(job_id, ".tar.gz"))
        return digest

    def _beat(self, job_id: Any, done: int, total: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(job_id, ".progress.json")
        temporary = path.with_name(path.name + ".new")
        temporary.write_text(json.dumps({"done": done, "total": total, "beat": time.time()}), encoding="utf-8")
        os.replace(temporary, path)

    def status(self, job_id: Any) -> dict[str, Any]:
        job = self.ledger.get("export_job", job_id)
        try:
            progress = json.loads(self._path(job.id, ".progress.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            progress = {"done": 0, "total": 0, "beat": 0.0}
        status = job.status
        if status == "requested" and time.time() - float(progress.get("beat", 0)) > STALE_SECONDS:
            status = "interrupted"  # no worker beats for it: a restart or a crash; request a new export
        return {"id": str(job.id), "status": status, "scope": job.scope, "requested_by": job.requested_by,
                "done": int(progress.get("done", 0)), "total": int(progress.get("total", 0)), "events": job.events,
                "sha256": job.sha256, "reason": job.reason, "downloads": job.downloads}

    def download(self, job_id: Any, ctx: Context) -> Path:
        """The completed archive, after checking it is the one the job recorded and recording the download."""
        job = self.ledger.get("export_job", job_id)
        path = self._path(job.id, ".tar.gz")
        job.record_download(ctx)  # refuses a job that is not completed, naming the rule
        with path.open("rb") as f:
            found = hashlib.file_digest(f, "sha256").hexdigest()
        if found != job.sha256:
            raise ExportTampered(f"export {job.id}: the archive's SHA-256 is {found}, the job recorded {job.sha256}")
        self.ledger.record(job)
        return path


class ExportTampered(RuntimeError):
    """The archive on disk is not the one the job completed with: never served."""
