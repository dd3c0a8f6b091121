"""Surveys of any case over HTTP: ``POST /case-surveys`` (a ticket, a contact resolved at first
contact, a complaint), through :func:`services.surveys.answer_case_survey`, which refuses an answer
entered by someone who handled the case (rule ``survey.not_by_handler``). Actions
``case_survey.create`` / ``case_survey.read``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Api
from marshmallow import fields, validate

from api.arguments import Blueprint
from api.idempotency import answers
from api.resources import context, ledger, written_new
from api.schemas import StateSchema, Strict, Text
from ledger.errors import NotFound
from services.surveys import answer_case_survey

KIND = "case_survey"


class CaseSurveyCreate(Strict):
    case_kind = fields.String(required=True, validate=validate.OneOf(["ticket", "interaction", "complaint"]))
    case_id = fields.UUID(required=True)
    csat = fields.Integer(load_default=None, validate=validate.Range(min=0, max=100))
    nps = fields.Integer(load_default=None, validate=validate.Range(min=0, max=100))
    comment = Text(2000, load_default=None)


class CaseSurveyState(StateSchema):
    case_kind, case_id, ticket_id, customer_id = (fields.String(), fields.String(), fields.String(),
                                                  fields.String())
    csat, nps = fields.Integer(allow_none=True), fields.Integer(allow_none=True)


def _state(survey: Any, status: int = 200) -> tuple[dict[str, Any], int, dict[str, str]]:
    data = {k: v for k, v in vars(survey).items() if not k.startswith("_")}
    data.setdefault("case_kind", "ticket")
    data.setdefault("case_id", data.get("ticket_id"))
    data.update(id=survey.id, version=survey.version, created_on=survey.created_on, modified_on=survey.modified_on)
    headers = {"ETag": f'"{survey.version}"'}
    if status == 201:
        headers["Location"] = f"/case-surveys/{survey.id}"
    return data, status, headers


def register_surveys(api: Api) -> None:
    blp = Blueprint("case_surveys", __name__, url_prefix="/case-surveys",
                    description="Satisfaction surveys of tickets, contacts resolved at first contact and complaints")

    @blp.route("", methods=["POST"], endpoint="create")
    @blp.arguments(CaseSurveyCreate)
    @blp.response(201, CaseSurveyState)
    @blp.doc(summary="Answer the survey of a case (never by someone who handled it)")
    @answers(lambda written, args: _state(_written(written), 201))
    def create(args):
        args["case_id"] = str(args["case_id"])
        return _state(answer_case_survey(ledger(), context(), **args), 201)

    @blp.route("/<uuid:survey_id>", endpoint="get")
    @blp.response(200, CaseSurveyState)
    @blp.doc(summary="A contact's or complaint's survey (a ticket's survey is read at /surveys/{id})")
    def get(survey_id):
        return _state(ledger().get(KIND, survey_id))

    api.register_blueprint(blp)


def _written(written: Any) -> Any:
    try:
        return written_new(KIND, written)
    except NotFound:  # the first request answered a ticket's survey
        return written_new("survey", written)
