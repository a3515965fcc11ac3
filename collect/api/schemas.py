"""The request bodies of the REST API, checked by pydantic before a route runs: bad input is a 422 with a message."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from collect.store.limits import EDIT_MAX_CHARS, FLAGS_MAX, RATIONALE_MAX_CHARS, SECONDS_SPENT_MAX

RowId = Annotated[int, Field(ge=1, le=2**62)]  # larger could not be a row id, and would overflow SQLite


class JudgmentIn(BaseModel):
    """An answer in display order: a `choice` label of the scale (or `preference`, -3..3, positive = A better)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    assignment_id: RowId
    choice: str | None = Field(None, description="one of the scale's labels, e.g. 'A slightly better', 'Both bad'")
    preference: int | None = Field(None, ge=-3, le=3)
    both_bad: bool = False
    ranks: list[int] | None = None
    ratings: list[int] | None = None
    rationale: str = Field("", max_length=RATIONALE_MAX_CHARS)
    flags: list[str] = Field([], max_length=FLAGS_MAX)
    seconds_spent: float | None = Field(None, ge=0, le=SECONDS_SPENT_MAX)
    edit: str | None = Field(
        None,
        max_length=EDIT_MAX_CHARS,
        description="your improved version of the better response (campaigns with allow_edits)",
    )


class AssignmentRef(BaseModel):
    """Which assignment an action is about."""

    assignment_id: RowId


class Problem(BaseModel):
    """Why a request was refused: one sentence naming what is wrong."""

    detail: str


class FieldProblem(BaseModel):
    """One field of a request that failed validation: where (`loc`), why (`msg`) and the kind of error (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A request whose fields failed validation: each field's problem, or one sentence."""

    detail: list[FieldProblem] | str


# Every answer a route can give besides its success, for the OpenAPI spec (clients and schemathesis read it).
ERROR_RESPONSES = {
    400: {"model": Problem, "description": "the request cannot be carried out as asked (the message says why)"},
    401: {"model": Problem, "description": "missing or unknown API token"},
    403: {"model": Problem, "description": "the token's rater may not do this"},
    404: {"model": Problem, "description": "no such campaign, or no such assignment of yours"},
    409: {"model": Problem, "description": "a concurrent submission of the same answer won; reload and retry"},
    413: {"model": Problem, "description": "the request body is over the size limit"},
    422: {"model": ValidationProblem, "description": "a field is missing, of the wrong type or out of range"},
    503: {
        "model": Problem,
        "description": "the database is busy or unavailable; nothing was stored, retry after Retry-After seconds",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}
