"""CaseLedger: the eventsourcing ``Application`` whose methods are caseledger's use cases.

Each command loads the aggregates it touches, lets the domain decide, and saves everything it
changed in one atomic ``save`` — one command, one transaction, all or nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoder
from eventsourcing.utils import Environment

from domain.calendar import BusinessCalendar
from domain.complaint import Complaint
from domain.context import Context
from domain.customer import Customer
from domain.errors import DomainError, PolicyError, TransitionForbidden
from domain.feedback import Feedback, SurveyResponse
from domain.interaction import Interaction
from domain.policy import Policy, PolicyBook
from domain.ticket import Ticket
from ledger import idempotency
from ledger.kinds import ACTIONS, ID_NAMESPACE, KINDS  # noqa: F401 - re-exported for callers
from ledger.crypto import KeyEncryptionKey, SealingMapper, SubjectErased, SubjectKeys
from ledger.business_time import Deadline
from ledger.collecting import CollectedEvents
from ledger.customer_check import KnownCustomers
from ledger.json_encoding import OneShotEncoder
from ledger.policy_in_force import PoliciesInForce
from ledger.snapshots import Snapshotting
from ledger.errors import (AlreadyExists, ConcurrentUpdate, HistoryUnreadable, InvalidRequest,
                           LedgerError, NotFound, StaleVersion)

_CUSTOMER_TOPIC_PREFIX = f"{Customer.__module__}:{Customer.__qualname__}."
#: How far business time may run ahead of the wall clock by default (``CASELEDGER_CLOCK_SKEW_SECONDS``).
DEFAULT_CLOCK_SKEW = timedelta(seconds=120)
_NO_META: dict[str, Any] = {}


def wall_clock() -> datetime:
    """The real time now, in UTC: what the ledger measures business time against."""
    return datetime.now(timezone.utc)


class CaseLedger(Snapshotting, Application):
    name = "CaseLedger"

    def __init__(self, env: dict[str, str] | None = None, *, policies: PolicyBook,
                 calendar: BusinessCalendar, policy_name: str | None = None, kek: KeyEncryptionKey | None = None,
                 key_cache_seconds: float = 5.0, clock: Callable[[], datetime] = wall_clock,
                 clock_skew: timedelta = DEFAULT_CLOCK_SKEW):
        """``kek``: the key-encryption key for per-subject data keys. Without it personal data is
        stored unencrypted (only benchmarks do that, as the baseline).

        ``clock``: the wall clock (aware datetimes), the one clock the ledger reads; no event may be
        dated later than it plus ``clock_skew`` (:meth:`_record`). Tests that work in business
        times later than today give a fake one."""
        self._kek = kek
        self.clock = clock
        self.clock_skew = clock_skew
        super().__init__(env)
        self.enable_snapshots(KINDS.values(), int(self.env.get("SNAPSHOT_EVERY") or 0))
        self.known_customers = KnownCustomers(self.recorder, _CUSTOMER_TOPIC_PREFIX)
        self.subject_keys: SubjectKeys | None = None
        if kek is not None:
            self.subject_keys = SubjectKeys(self.recorder, kek, cache_seconds=key_cache_seconds)
            self.mapper.keys = self.subject_keys
        self.policies = policies
        self._in_force = PoliciesInForce(policies)
        self.calendar = calendar
        self.policy_name = policy_name or policies.default_name
        if not policies.versions(self.policy_name):
            raise PolicyError(f"unknown policy {self.policy_name!r} (give a name or name@version)",
                              rule="policy.unknown")

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """The given persistence settings only. eventsourcing would also merge the whole process
        environment, where a stray ``CIPHER_TOPIC`` or ``POSTGRES_*`` could change how events are
        stored; ``ledger.settings`` is the one reader of the environment."""
        return Environment(name, {**type(self).env, **(env or {})})

    def construct_transcoder(self) -> Transcoder:
        """eventsourcing's, writing the same JSON with an encoder made once (``ledger.json_encoding``)."""
        transcoder = super().construct_transcoder()
        if isinstance(transcoder, JSONTranscoder):
            transcoder.encoder = OneShotEncoder.like(transcoder.encoder)
        return transcoder

    def construct_mapper(self):  # noqa: ANN201 - eventsourcing's hook
        if self._kek is None:
            return super().construct_mapper()
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=SealingMapper)

    def facts_mapper(self) -> Any:
        """A mapper that leaves personal parts sealed: for read models, which never need them."""
        if not isinstance(self.mapper, SealingMapper):
            return self.mapper
        return SealingMapper(self.mapper.transcoder, keys=None, unseal=False, cipher=self.mapper.cipher,
                             compressor=self.mapper.compressor)

    # -- reading --------------------------------------------------------------------------
    def get(self, kind: str, aggregate_id: UUID | str, version: int | None = None) -> Any:
        cls = _kind(kind)
        uid = _uuid(aggregate_id, kind)
        try:
            aggregate = self.repository.get(uid, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no {kind} {uid}") from None
        except (TypeError, KeyError, ValueError, AttributeError) as e:  # an event the code cannot fold
            raise HistoryUnreadable(kind, uid, e) from e
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {kind} {uid}")
        return aggregate

    def exists(self, kind: str, aggregate_id: UUID | str) -> bool:
        try:
            self.get(kind, aggregate_id)
        except NotFound:
            return False
        return True

    def contact_details(self, customer_id: UUID | str) -> dict[str, Any]:
        """A customer's current contact details, folded from the personal part of their events."""
        customer = self.get("customer", customer_id)
        contact: dict[str, Any] = {}
        for event in self.events.get(customer.id):
            fields = (getattr(event, "personal", None) or {}).get("fields") or {}
            contact.update(fields)
        return contact

    def policy_of(self, aggregate: Any) -> Policy:
        return self.policies.get(aggregate.policy_ref)

    def policy_for_new_case(self, ctx: Context) -> Policy:
        """The policy version in force at ``ctx.occurred_at`` (``PolicyBook.in_force``), remembered
        (``ledger.policy_in_force``): paid by every new case and import line."""
        return self._in_force.at(ctx.occurred_at, self.policy_name)

    def history(self, kind: str, aggregate_id: UUID | str, *, after: int = 0, limit: int = 50) -> list[Any]:
        """An aggregate's events with version > ``after``, oldest first, at most ``limit``."""
        aggregate = self.get(kind, aggregate_id)
        return list(self.events.get(aggregate.id, gt=after, limit=limit))

    def log(self, *, after: int = 0, limit: int = 100) -> list[tuple[int, Any]]:
        """(position, event) pairs from the application's notification log, in log order."""
        notifications = self.recorder.select_notifications(start=after + 1, limit=limit)
        return [(n.id, self.mapper.to_domain_event(n)) for n in notifications]

    # -- one command on one aggregate -----------------------------------------------------------
    def act(self, kind: str, aggregate_id: UUID | str, action: str, ctx: Context, args: dict[str, Any],
            expected_version: int | None = None, *, loaded: Any = None) -> Any:
        """``loaded``: the aggregate as this request already loaded it (the API's permission check),
        so it is not loaded twice; anything else, or None, and it is loaded here."""
        if action not in ACTIONS.get(kind, frozenset()):
            raise InvalidRequest(f"{kind} has no action {action!r}")
        uid = _uuid(aggregate_id, kind)
        fresh = isinstance(loaded, _kind(kind)) and loaded.id == uid and not loaded.pending_events
        aggregate = loaded if fresh else self.get(kind, uid)
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(expected_version, aggregate.version)
        getattr(aggregate, action)(policy=self.policy_of(aggregate), ctx=ctx, **args)
        self._save(aggregate)
        return aggregate

    # -- commands that create aggregates -------------------------------------------------------
    def register_customer(self, ctx: Context, *, kind: str, tier: str, contact: dict[str, Any],
                          consents: dict[str, bool] | None = None) -> Customer:
        customer = Customer.register(id=uuid4(), kind=kind, tier=tier, contact=contact, consents=consents or {},
                                     policy=self.policy_for_new_case(ctx), ctx=ctx)
        self._save(customer)
        return customer

    def receive_interaction(self, ctx: Context, **fields: Any) -> Interaction:
        interaction = self._new_interaction(ctx, fields)
        self._save(interaction)
        return interaction

    def import_interactions(self, records: Sequence[tuple[Context, dict[str, Any]]], *, batch_size: int = 500) -> dict[str, int]:
        """Save many interactions in batches, one transaction each. Records carrying an
        ``external_ref`` get a deterministic id, so importing the same file twice adds nothing."""
        deadline = Deadline(self.clock(), self.clock_skew)
        for ctx, _ in records:  # the business-time rule, for every record before the first batch is saved
            deadline.require(ctx.occurred_at)
        imported = skipped = 0
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            batch = _unique_ids(self._new_interaction(ctx, dict(fields)) for ctx, fields in chunk)
            try:
                self._save(*batch)
            except ConcurrentUpdate:
                # Some were imported before. A failed save has consumed the pending events, so
                # build the new ones again rather than reuse the objects.
                stored = {i.id for i in batch if self._is_stored(i.id)}
                batch = [i for i in _unique_ids(self._new_interaction(ctx, dict(fields)) for ctx, fields in chunk)
                         if i.id not in stored]
                if batch:
                    self._save(*batch)
            imported += len(batch)
            skipped += len(chunk) - len(batch)
        return {"imported": imported, "skipped": skipped}

    def check_interactions(self, records: Sequence[tuple[Context, dict[str, Any]]]) -> dict[int, Exception]:
        """What :meth:`import_interactions` would refuse, by index, saving nothing: each interaction is
        built in memory and dropped. (A refusal there stops the import at its batch, after the earlier
        batches were saved; a caller promising all or nothing checks here first.)"""
        problems: dict[int, Exception] = {}
        deadline = Deadline(self.clock(), self.clock_skew)
        for index, (ctx, fields) in enumerate(records):
            try:
                deadline.require(ctx.occurred_at)
                self._new_interaction(ctx, dict(fields))
            except (DomainError, LedgerError) as e:
                problems[index] = e
        return problems

    def open_ticket(self, ctx: Context, *, customer_id: str, channel: str, summary: str | None = None,
                    interaction_id: str | None = None) -> Ticket:
        """Open a ticket; from an interaction, its first-contact agent becomes the ticket's owner."""
        self._require_customer(customer_id)
        if interaction_id is None:
            ticket = Ticket.receive(id=uuid4(), customer_id=customer_id, channel=channel, summary=summary,
                                    first_contact_owner=ctx.actor_id, policy=self.policy_for_new_case(ctx), ctx=ctx)
            self._save(ticket)
            return ticket
        interaction = self.get("interaction", interaction_id)
        if interaction.customer_id not in (None, str(customer_id)):
            raise InvalidRequest("the interaction belongs to another customer")
        owner = interaction.first_contact_agent
        if owner is None:
            raise TransitionForbidden("register the interaction before opening a ticket from it",
                                      rule="interaction.ticket_requires_registration")
        ticket = Ticket.receive(id=uuid4(), customer_id=customer_id, channel=channel, summary=summary,
                                first_contact_owner=owner, interaction_id=str(interaction.id),
                                policy=self.policy_for_new_case(ctx), ctx=ctx)
        interaction.open_ticket(ticket_id=str(ticket.id), policy=self.policy_of(interaction), ctx=ctx)
        self._save(ticket, interaction)
        return ticket

    def accept_complaint(self, ctx: Context, *, customer_id: str, channel: str, description: str | None = None,
                         ticket_id: str | None = None) -> Complaint:
        self._require_customer(customer_id)
        if ticket_id is not None:
            self._require_same_customer(self.get("ticket", ticket_id), customer_id)
        complaint = Complaint.accept(id=uuid4(), customer_id=customer_id, channel=channel, description=description,
                                     ticket_id=ticket_id, policy=self.policy_for_new_case(ctx), ctx=ctx)
        self._save(complaint)
        return complaint

    def submit_feedback(self, ctx: Context, *, kind: str, customer_id: str, channel: str,
                        content: str | None = None, ticket_id: str | None = None) -> Feedback:
        self._require_customer(customer_id)
        if ticket_id is not None:
            self._require_same_customer(self.get("ticket", ticket_id), customer_id)
        feedback = Feedback.submit(id=uuid4(), kind=kind, customer_id=customer_id, channel=channel, content=content,
                                   ticket_id=ticket_id, policy=self.policy_for_new_case(ctx), ctx=ctx)
        self._save(feedback)
        return feedback

    def escalate_feedback(self, ctx: Context, feedback_id: str, *, expected_version: int | None = None) -> Complaint:
        """Turn complaint feedback into a formal complaint: both saved in one transaction."""
        feedback = self.get("feedback", feedback_id)
        if expected_version is not None and feedback.version != expected_version:
            raise StaleVersion(expected_version, feedback.version)
        complaint = Complaint.accept(id=uuid4(), customer_id=feedback.customer_id, channel=feedback.channel,
                                     ticket_id=feedback.ticket_id, policy=self.policy_for_new_case(ctx), ctx=ctx)
        feedback.escalate_to_complaint(complaint_id=str(complaint.id), policy=self.policy_of(feedback), ctx=ctx)
        self._save(feedback, complaint)
        return complaint

    def answer_survey(self, ctx: Context, *, ticket_id: str, csat: int | None = None, nps: int | None = None,
                      comment: str | None = None) -> SurveyResponse:
        """One survey per ticket (deterministic id), once the customer has seen the result."""
        ticket = self.get("ticket", ticket_id)
        if not ticket.can_be_surveyed():
            raise TransitionForbidden(f"a survey needs the result fed back to the customer; the ticket is {ticket.status}",
                                      rule="survey.requires_result_feedback")
        survey = SurveyResponse.answer(id=uuid5(ID_NAMESPACE, f"survey:{ticket.id}"), ticket_id=str(ticket.id),
                                       customer_id=ticket.customer_id, csat=csat, nps=nps, comment=comment,
                                       policy=self.policy_for_new_case(ctx), ctx=ctx)
        try:
            self._save(survey)
        except ConcurrentUpdate:
            raise AlreadyExists(f"ticket {ticket.id} already has a survey answer") from None
        return survey

    # -- helpers -------------------------------------------------------------------------
    def _new_interaction(self, ctx: Context, fields: dict[str, Any]) -> Interaction:
        agent_id, queue = fields.pop("agent_id", None), fields.pop("queue", None)
        if fields.get("customer_id"):
            self._require_customer(fields["customer_id"])
        ref = fields.get("external_ref")
        new_id = uuid5(ID_NAMESPACE, f"interaction:{ref}") if ref else uuid4()
        policy = self.policy_for_new_case(ctx)
        interaction = Interaction.receive(id=new_id, policy=policy, ctx=ctx, **fields)
        if agent_id:
            interaction.register(agent_id=agent_id, policy=policy, ctx=ctx)
        if queue:
            if not agent_id:
                raise InvalidRequest("routing an interaction needs the agent who registered it (agent_id)")
            interaction.route(queue=queue, policy=policy, ctx=ctx)
        return interaction

    def _is_stored(self, aggregate_id: UUID) -> bool:
        return bool(list(self.events.get(aggregate_id, limit=1)))

    def _require_customer(self, customer_id: str) -> None:
        """The customer exists (``ledger.customer_check``: no replay, no decryption, once per process)."""
        self.known_customers.require(customer_id)

    @staticmethod
    def _require_same_customer(case: Any, customer_id: str) -> None:
        if case.customer_id != str(customer_id):
            raise InvalidRequest(f"{type(case).__name__.lower()} {case.id} belongs to another customer")

    def require_not_ahead(self, occurred_at: datetime, now: datetime | None = None) -> None:
        """Refuse a business time later than the wall clock plus the allowed skew (rule ``time.future``)."""
        Deadline(self.clock() if now is None else now, self.clock_skew).require(occurred_at)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """eventsourcing's ``Application.save`` (9.5, line for line), collecting the events with
        ``ledger.collecting.CollectedEvents``: the same events, without runtime Protocol checks."""
        processing_event = CollectedEvents()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # Deprecated (eventsourcing still calls it).
        return recordings

    def _record(self, processing_event: ProcessingEvent) -> Any:
        """Every event passes here on its way to the store, whoever saves it (commands, services,
        imports, the scheduler): so the business-time rule is enforced here, once, and nothing of a
        save is stored when one of its events breaks it. And the recorder gets the served request's
        Idempotency-Key claim, to mark in the events' transaction (see ``ledger.idempotency``)."""
        deadline = Deadline(self.clock(), self.clock_skew)
        for event in processing_event.events:
            occurred_at = (getattr(event, "meta", None) or _NO_META).get("occurred_at")
            if occurred_at is not None:
                deadline.require_text(occurred_at)
        if (claim := idempotency.CLAIM.get()) is not None:
            processing_event.saved_kwargs["idempotency"] = claim
        return super()._record(processing_event)

    def record(self, *aggregates: Aggregate) -> None:
        """Save new or changed aggregates in one transaction, with the ledger's error mapping: the
        public form of :meth:`_save`, for services that create kinds of record the methods above
        do not (incidents, audits, samples, subscriptions…)."""
        self._save(*aggregates)

    def _save(self, *aggregates: Aggregate) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrentUpdate("another change to the same record was saved first; reload and retry") from None
        except SubjectErased as erased:
            raise TransitionForbidden(str(erased), rule=erased.rule) from None


def _kind(kind: str) -> type[Aggregate]:
    try:
        return KINDS[kind]
    except KeyError:
        raise NotFound(f"unknown kind {kind!r}") from None


def _uuid(value: UUID | str, kind: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(f"no {kind} {value!r}") from None


def _unique_ids(batch: Iterable[Interaction]) -> list[Interaction]:
    """Within one batch the same external reference counts once."""
    seen: dict[UUID, Interaction] = {}
    for interaction in batch:
        seen.setdefault(interaction.id, interaction)
    return list(seen.values())
