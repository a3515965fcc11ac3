"""The routes of the REST API: what a rater does (next task, submit, skip, undo), and a campaign's stats and export.

Every request authenticates a rater by API token and runs in one transaction that commits
before the response is sent.
"""

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request

from collect.api.auth import bearer, require_scope
from collect.api.schemas import AssignmentRef, JudgmentIn
from collect.domain.answers import answer_of
from collect.services.campaign_cache import campaign_named, campaign_spec
from collect.services.export.items import load_items
from collect.services.export.majority import SPLIT_RULES
from collect.services.export.rows import FORMATS, ExportArguments, export_rows, summarize
from collect.services.read_models import TaskView, campaign_stats, prelabel_after_vote, task_view
from collect.services.scheduling import assignment_in_campaign, next_task, skip_task, submit_judgment, undo_last
from collect.store import Assignment, Campaign, Rater, Task

# Literal types, so the OpenAPI spec lists the choices (a tuple subscript is the same as listing them).
ExportFormat = Literal[FORMATS]
SplitRule = Literal[SPLIT_RULES]


def _rater(session, credentials) -> Rater:
    return require_scope(session, credentials, "rate")


def _answer(body: JudgmentIn) -> dict:
    answer = body.model_dump(exclude={"assignment_id", "choice"})
    if body.choice is not None:
        try:
            answer.update(answer_of(body.choice))
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
    return answer


def rating_routes() -> APIRouter:
    """What a rater does: get the next task, answer, skip, undo."""
    router = APIRouter(prefix="/api")

    @router.get("/campaigns/{name}/next", response_model=TaskView | None)
    def next_for_me(name: str, request: Request, credentials=Depends(bearer)):
        """Lease the next task (or return the one already leased); null when nothing is left for you."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            campaign = campaign_named(session, name)  # held here, so the task view finds it without a read
            assignment = next_task(session=session, campaign=campaign, rater=rater)
            return task_view(session, assignment) if assignment else None

    @router.post("/campaigns/{name}/judgments", status_code=201)
    def submit(name: str, body: JudgmentIn, request: Request, credentials=Depends(bearer)) -> dict:
        """Submit (or edit) your answer to a leased task; it is stored when this returns."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            campaign = campaign_named(session, name)
            # Held while the service runs, so it finds the assignment and its task without reading them again.
            assignment, task = _own_campaign_assignment(session, campaign, body.assignment_id, rater)
            judgment = submit_judgment(session=session, rater=rater, assignment_id=assignment.id, **_answer(body))
            result = {"judgment_id": judgment.id, "task_id": judgment.task_id, "supersedes_id": judgment.supersedes_id}
            prelabel = prelabel_after_vote(campaign_spec(campaign), task, assignment)
            if prelabel is not None:  # the model's answer, now that the rater has given theirs
                result["prelabel"] = prelabel
        return result

    @router.post("/campaigns/{name}/skip")
    def skip(name: str, body: AssignmentRef, request: Request, credentials=Depends(bearer)) -> dict:
        """Pass on a leased task: it is not offered to you again."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            campaign = campaign_named(session, name)
            assignment, task = _own_campaign_assignment(session, campaign, body.assignment_id, rater)
            return {"skipped": skip_task(session=session, rater=rater, assignment_id=assignment.id).task_id}

    @router.post("/campaigns/{name}/undo", response_model=TaskView)
    def undo(name: str, request: Request, credentials=Depends(bearer)):
        """Take back your latest judgment in the campaign; its task is leased to you again."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            campaign = campaign_named(session, name)
            return task_view(session, undo_last(session=session, campaign=campaign, rater=rater))

    return router


def campaign_routes() -> APIRouter:
    """What the campaign looks like: progress, and its export."""
    router = APIRouter(prefix="/api")

    @router.get("/campaigns/{name}/stats")
    def stats(name: str, request: Request, credentials=Depends(bearer)) -> dict:
        """Progress: tasks, complete tasks, live judgments, raters, and your own count."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)  # before the campaign: a stranger learns nothing of which exist
            return campaign_stats(session, campaign_named(session, name), rater)

    @router.get("/campaigns/{name}/export")
    def export(
        name: str,
        request: Request,
        format: ExportFormat = "pairwise",
        per_rater: bool = False,
        on_split: SplitRule = "drop",
        credentials=Depends(bearer),
    ) -> dict:
        """The campaign's dataset rows and summary in a contract format (reviewers and admins only)."""
        try:
            args = ExportArguments(campaign=name, format=format, per_rater=per_rater, on_split=on_split)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        with request.app.state.sessions.begin() as session:
            require_scope(session, credentials, "review")  # a scope only reviewers' and admins' tokens can hold
            items = load_items(session, campaign_named(session, name).id)
        rows, left_out = export_rows(items, args)
        return {"rows": rows, "summary": summarize(items, rows, left_out, args)}

    return router


def _own_campaign_assignment(session, campaign: Campaign, assignment_id: int, rater: Rater) -> tuple[Assignment, Task]:
    """The rater's assignment in the campaign and its task; whoever holds them spares the service a second read."""
    mine = assignment_in_campaign(session=session, campaign=campaign, rater=rater, assignment_id=assignment_id)
    if mine is None:
        # One answer whether the id does not exist, is another rater's or another campaign's: ids cannot be probed.
        raise HTTPException(404, f"assignment {assignment_id} is not one of yours in campaign '{campaign.name}'")
    return mine
