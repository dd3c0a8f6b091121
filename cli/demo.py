"""A realistic demo data set: customers, a few hundred interactions, tickets and complaints at every
stage of their lifecycles. Deterministic for a given seed; business times spread over recent weeks."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from domain.context import Context
from ledger.application import CaseLedger

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "军", "杰", "娟", "涛", "明", "超", "霞"]
ISSUES = ["宽带无法连接", "账单金额有误", "手机信号差", "套餐变更申请", "发票开具", "退款进度查询", "APP 登录失败",
          "上门安装预约", "话费充值未到账", "投诉服务态度"]
CHANNELS = ["phone", "online_chat", "app", "web", "email", "sms", "wechat", "on_site", "self_service"]
AGENTS = ["agent-li", "agent-zhao", "agent-qian", "agent-sun"]
LEADS = ["lead-wang", "lead-zhou"]


@dataclass
class DemoClock:
    """Business time for the demo: starts ``days`` ago and moves forward by small random steps, never
    past ``until`` (the wall clock at the start: the ledger refuses business time ahead of it)."""

    now: datetime
    rng: random.Random
    until: datetime

    def tick(self, minutes: tuple[int, int] = (1, 90)) -> datetime:
        self.now = min(self.now + timedelta(minutes=self.rng.randint(*minutes)), self.until)
        return self.now


def load_demo(ledger: CaseLedger, *, customers: int = 40, interactions: int = 300, seed: int = 7,
              days: int = 45, now: datetime | None = None, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    rng = random.Random(seed)
    end = now or datetime.now(timezone.utc)
    clock = DemoClock(end - timedelta(days=days), rng, end)
    step_minutes = max(1, int(days * 24 * 60 * 0.8 / max(interactions, 1)))
    counts = {"customers": 0, "interactions": 0, "tickets": 0, "complaints": 0, "feedback": 0, "surveys": 0}

    def ctx(actor: str, role: str = "agent", reason: str | None = None) -> Context:
        return Context(actor, role, clock.tick((1, 5)), f"demo-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}", reason)

    customer_ids = []
    for n in range(customers):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN])
        c = ledger.register_customer(ctx("agent-li"), kind=rng.choice(["individual"] * 4 + ["enterprise"]),
                                     tier=rng.choice(["vip", "important", "general", "general", "potential"]),
                                     contact={"name": name, "phone": f"13{rng.randint(0, 9)}{rng.randint(10**7, 10**8 - 1)}"},
                                     consents={"marketing": rng.random() < 0.4, "service_contact": True})
        customer_ids.append(str(c.id))
        counts["customers"] += 1
        _tick(progress)

    for n in range(interactions):
        clock.tick((1, step_minutes * 2))
        cid = rng.choice(customer_ids)
        agent = rng.choice(AGENTS)
        channel = rng.choice(CHANNELS)
        issue = rng.choice(ISSUES)
        interaction = ledger.receive_interaction(ctx(agent), channel=channel, direction="inbound", customer_id=cid,
                                                 content=issue, agent_id=agent, queue=f"queue-{channel}")
        counts["interactions"] += 1
        roll = rng.random()
        if roll < 0.55:
            ledger.act("interaction", interaction.id, "close", ctx(agent), {"resolved_on_first_contact": True})
        elif roll < 0.93:
            ticket = ledger.open_ticket(ctx(agent), customer_id=cid, channel=channel, summary=issue,
                                        interaction_id=str(interaction.id))
            counts["tickets"] += 1
            ledger.act("interaction", interaction.id, "close", ctx(agent), {"resolved_on_first_contact": False})
            counts["surveys"] += _drive_ticket(ledger, ticket.id, rng, ctx)
            if "投诉" in issue or rng.random() < 0.08:
                _complaint(ledger, cid, channel, str(ticket.id), rng, ctx)
                counts["complaints"] += 1
        else:
            kind = rng.choice(["suggestion", "praise", "complaint"])
            fb = ledger.submit_feedback(ctx(agent), kind=kind, customer_id=cid, channel=channel, content=issue)
            counts["feedback"] += 1
            ledger.act("interaction", interaction.id, "close", ctx(agent), {"resolved_on_first_contact": True})
            if rng.random() < 0.8:
                ledger.act("feedback", fb.id, "respond", ctx(agent), {})
                if rng.random() < 0.8:
                    ledger.act("feedback", fb.id, "reply", ctx(agent), {"note": "已记录并转相关部门"})
        _tick(progress)
    return counts


def _drive_ticket(ledger: CaseLedger, ticket_id: uuid.UUID, rng: random.Random, ctx: Callable[..., Context]) -> int:
    """Drive a ticket a random distance along its lifecycle; returns 1 if a survey was answered."""
    handler = rng.choice(AGENTS)
    complexity = rng.choice(["general"] * 6 + ["complex", "major"])
    steps = list(_ticket_steps(handler, complexity, rng))
    stop_at = rng.choice([2, 4, 6, 8, len(steps), len(steps), len(steps)])
    surveyed = 0
    for action, actor, role, args, reason in steps[:stop_at]:
        if action == "survey":
            ledger.answer_survey(ctx(actor, role), ticket_id=str(ticket_id), csat=rng.choice([5, 5, 4, 4, 3, 2, 1]),
                                 nps=rng.choice([10, 9, 9, 8, 7, 6, 3]))
            surveyed = 1
            continue
        ledger.act("ticket", ticket_id, action, ctx(actor, role, reason), args)
    return surveyed


def _ticket_steps(handler: str, complexity: str, rng: random.Random) -> Iterator[tuple]:
    lead = rng.choice(LEADS)
    priority, high_risk = rng.choice(["urgent", "important", "normal", "normal"]), rng.random() < 0.05
    # Complex, major and high-risk tickets wait for a second reviewer after each resolution.
    reviewed = complexity != "general" or high_risk
    yield "classify", lead, "team_lead", {"priority": priority, "complexity": complexity, "high_risk": high_risk}, None
    yield "respond_first", handler, "agent", {"message": "您好，已收到您的问题"}, None
    yield "assign", lead, "team_lead", {"handler": handler, "team": "hotline"}, None
    yield "start_work", handler, "agent", {}, None
    yield "resolve", handler, "agent", {"resolution": "已处理"}, None
    if reviewed:
        yield "review", lead, "team_lead", {"approved": True}, None
    yield "feed_back_result", handler, "agent", {"channel": "sms"}, None
    if rng.random() < 0.15:  # the customer rejects once: rework
        yield "record_acceptance", handler, "agent", {"accepted": False, "comment": "问题仍未解决"}, None
        yield "resolve", handler, "agent", {"resolution": "二次处理"}, None
        if reviewed:
            yield "review", lead, "team_lead", {"approved": True}, None
        yield "feed_back_result", handler, "agent", {"channel": "phone"}, None
    yield "record_acceptance", handler, "agent", {"accepted": True}, None
    yield "survey", handler, "agent", {}, None
    yield "close", handler, "agent", {}, None
    yield "archive", "records-chen", "records_manager", {}, None


def _complaint(ledger: CaseLedger, cid: str, channel: str, ticket_id: str, rng: random.Random,
               ctx: Callable[..., Context]) -> None:
    manager = "cm-zhou"
    c = ledger.accept_complaint(ctx("agent-li"), customer_id=cid, channel=channel, ticket_id=ticket_id,
                                description="客户对处理结果不满意")
    steps = [
        ("classify", {"complaint_type": rng.choice(["technical", "process", "communication"]),
                      "level": rng.choice([1, 2, 2, 3, 3])}, None),
        ("start_investigation", {}, None),
        ("add_evidence", {"kind": "call_recording", "reference": f"REC-{rng.randint(1000, 9999)}"}, None),
        ("escalate", {"to_rung": "team_lead"}, "needs a decision above frontline"),
        ("decide_remedy", {"kind": "compensation", "amount": "30.00", "details": "话费补偿"}, None),
        ("notify_customer", {"channel": "phone"}, None),
        ("record_evaluation", {"satisfied": rng.random() < 0.8, "score": rng.choice([3, 4, 5])}, None),
        ("archive", {}, None),
        ("record_root_cause", {"category": rng.choice(["process-gap", "training", "system-defect"])}, None),
    ]
    for action, args, reason in steps[: rng.choice([2, 4, 6, len(steps), len(steps)])]:
        ledger.act("complaint", c.id, action, ctx(manager, "complaint_manager", reason), args)


def _tick(progress: Callable[[int], None] | None) -> None:
    if progress:
        progress(1)
