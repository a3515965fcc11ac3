"""The REST API raters' clients, load tests and the Gradio app talk to (FastAPI; OpenAPI at /docs).

Every request authenticates a rater by API token (`Authorization: Bearer TOKEN`, from
`plumb collect add-rater`) and runs in one transaction that commits before the response
is sent, so an acknowledged judgment is a stored one. Bad input is a 4xx with a message.

    plumb collect serve-api --db campaign.sqlite --port 8000
"""

import contextlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from collect.campaign import BOTH_BAD, PAIRWISE_SCALE, spec_of
from collect.scheduling import next_task, skip_task, submit_judgment, undo_last
from collect.store import (
    STAFF_ROLES,
    Assignment,
    Campaign,
    Candidate,
    Prompt,
    Rater,
    StoreError,
    Task,
    campaign_by_name,
    live_judgments_query,
    open_store,
    rater_by_token,
)
from collect.store.campaigns import CampaignError

LABELS = "ABCDEFGHIJ"
bearer = HTTPBearer(auto_error=False)


class TaskView(BaseModel):
    """A leased task as a rater sees it: candidates in the randomized order of this assignment."""

    assignment_id: int
    task_id: int
    kind: str
    prompt: list[dict]
    candidates: list[dict]  # {"label": "A", "completion": [messages]}
    expires_at: datetime
    options: dict  # the answer scale, flags, rationale rule and guidelines of the campaign


RowId = Annotated[int, Field(ge=1, le=2**62)]  # larger could not be a row id, and would overflow SQLite


class JudgmentIn(BaseModel):
    """An answer in display order: a `choice` label of the scale (or `preference`, -3..3, positive = A better)."""

    assignment_id: RowId
    choice: str | None = Field(None, description="one of the scale's labels, e.g. 'A slightly better', 'Both bad'")
    preference: int | None = Field(None, ge=-3, le=3)
    both_bad: bool = False
    ranks: list[int] | None = None
    ratings: list[int] | None = None
    rationale: str = Field("", max_length=10_000)
    flags: list[str] = []
    seconds_spent: float | None = Field(None, ge=0)
    edit: str | None = Field(
        None, max_length=50_000, description="your improved version of the better response (campaigns with allow_edits)"
    )


class AssignmentRef(BaseModel):
    """Which assignment an action is about."""

    assignment_id: RowId


def create_app(db: str | None = None) -> FastAPI:
    """The FastAPI app on the database `db` (a URL or SQLite file; default: $PLUMB_DB or the data dir)."""
    sessions = open_store(db)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        sessions.kw["bind"].dispose()  # close pooled database connections when the server stops

    app = FastAPI(title="Plumb collect API", description=__doc__, version="1", lifespan=lifespan)
    app.state.sessions = sessions
    app.exception_handler(StoreError)(_store_error)
    app.exception_handler(IntegrityError)(_conflict)
    app.exception_handler(TimeoutError)(_busy)
    app.include_router(_rating_routes())
    app.include_router(_campaign_routes())
    app.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        response_class=PlainTextResponse,
        summary="Campaign progress in the Prometheus text format",
    )
    return app


def _metrics(request: Request) -> str:
    from collect.metrics import prometheus_text

    with request.app.state.sessions() as session:
        return prometheus_text(session)


def _store_error(request: Request, error: StoreError) -> JSONResponse:
    status = 404 if isinstance(error, CampaignError) and str(error).startswith("no campaign") else 400
    return JSONResponse({"detail": str(error)}, status_code=status)


def _conflict(request: Request, error: IntegrityError) -> JSONResponse:
    # A unique index refused the write: the same answer arrived twice at once.
    return JSONResponse({"detail": "conflicting concurrent submission; reload the task and try again"}, status_code=409)


def _busy(request: Request, error: TimeoutError) -> JSONResponse:
    # SQLite's single writer was held for longer than the busy timeout: the client may retry.
    return JSONResponse(
        {"detail": f"the database is busy ({error}); retry shortly"}, status_code=503, headers={"Retry-After": "1"}
    )


def _rater(session, credentials: HTTPAuthorizationCredentials | None) -> Rater:
    rater = rater_by_token(session=session, token=credentials.credentials) if credentials else None
    if rater is None:
        raise HTTPException(401, "missing or unknown API token (Authorization: Bearer TOKEN)")
    return rater


def task_view(session, assignment: Assignment) -> TaskView:
    """What the rater is shown for an assignment (never the policies' names or a gold answer)."""
    task = session.get(Task, assignment.task_id)
    campaign = session.get(Campaign, task.campaign_id)
    candidates = {c.id: c for c in session.scalars(select(Candidate).where(Candidate.id.in_(task.candidate_ids)))}
    shown = [candidates[task.candidate_ids[index]] for index in assignment.candidate_order]
    spec = spec_of(campaign)
    options = {"flags": spec.flags, "rationale": spec.rationale, "guidelines": spec.guidelines}
    if task.kind == "pairwise":
        options.update(scale=spec.scale(), allow_edits=spec.allow_edits)
    elif task.kind == "rating":
        options["rating_points"] = spec.rating_points
    return TaskView(
        assignment_id=assignment.id,
        task_id=task.id,
        kind=task.kind,
        prompt=session.get(Prompt, task.prompt_id).messages,
        expires_at=assignment.expires_at,
        candidates=[{"label": LABELS[i], "completion": c.completion} for i, c in enumerate(shown)],
        options=options,
    )


def _answer(body: JudgmentIn) -> dict:
    answer = body.model_dump(exclude={"assignment_id", "choice"})
    if body.choice is not None:
        if body.choice == BOTH_BAD:
            answer.update(preference=None, both_bad=True)
        elif body.choice in dict(PAIRWISE_SCALE):
            answer["preference"] = dict(PAIRWISE_SCALE)[body.choice]
        else:
            labels = ", ".join([label for label, _ in PAIRWISE_SCALE] + [BOTH_BAD])
            raise HTTPException(422, f"unknown choice '{body.choice}' (choose one of: {labels})")
    return answer


def _rating_routes() -> APIRouter:
    """What a rater does: get the next task, answer, skip, undo."""
    router = APIRouter(prefix="/api")

    @router.get("/campaigns/{name}/next", response_model=TaskView | None)
    def next_for_me(name: str, request: Request, credentials=Depends(bearer)):
        """Lease the next task (or return the one already leased); null when nothing is left for you."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            assignment = next_task(session=session, campaign=campaign_by_name(session=session, name=name), rater=rater)
            return task_view(session, assignment) if assignment else None

    @router.post("/campaigns/{name}/judgments", status_code=201)
    def submit(name: str, body: JudgmentIn, request: Request, credentials=Depends(bearer)) -> dict:
        """Submit (or edit) your answer to a leased task; it is stored when this returns."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            _own_campaign_assignment(session, name, body.assignment_id)
            judgment = submit_judgment(session=session, rater=rater, assignment_id=body.assignment_id, **_answer(body))
            result = {"judgment_id": judgment.id, "task_id": judgment.task_id, "supersedes_id": judgment.supersedes_id}
        return result

    @router.post("/campaigns/{name}/skip")
    def skip(name: str, body: AssignmentRef, request: Request, credentials=Depends(bearer)) -> dict:
        """Pass on a leased task: it is not offered to you again."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            _own_campaign_assignment(session, name, body.assignment_id)
            return {"skipped": skip_task(session=session, rater=rater, assignment_id=body.assignment_id).task_id}

    @router.post("/campaigns/{name}/undo", response_model=TaskView)
    def undo(name: str, request: Request, credentials=Depends(bearer)):
        """Take back your latest judgment in the campaign; its task is leased to you again."""
        with request.app.state.sessions.begin() as session:
            rater = _rater(session, credentials)
            campaign = campaign_by_name(session=session, name=name)
            return task_view(session, undo_last(session=session, campaign=campaign, rater=rater))

    return router


def _campaign_routes() -> APIRouter:
    """What the campaign looks like: progress, and its export."""
    router = APIRouter(prefix="/api")

    @router.get("/campaigns/{name}/stats")
    def stats(name: str, request: Request, credentials=Depends(bearer)) -> dict:
        """Progress: tasks, complete tasks, live judgments, raters, and your own count."""
        with request.app.state.sessions.begin() as session:
            return campaign_stats(session, campaign_by_name(session=session, name=name), _rater(session, credentials))

    @router.get("/campaigns/{name}/export")
    def export(
        name: str,
        request: Request,
        format: str = "pairwise",
        per_rater: bool = False,
        on_split: str = "drop",
        credentials=Depends(bearer),
    ) -> dict:
        """The campaign's dataset rows and summary in a contract format (reviewers and admins only)."""
        from collect.export import ExportArguments, export_rows, load_items, summarize

        try:
            args = ExportArguments(campaign=name, format=format, per_rater=per_rater, on_split=on_split)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        with request.app.state.sessions.begin() as session:
            if _rater(session, credentials).role not in STAFF_ROLES:
                raise HTTPException(403, "exporting needs the reviewer or admin role")
            items = load_items(session, campaign_by_name(session=session, name=name).id)
        rows, left_out = export_rows(items, args)
        return {"rows": rows, "summary": summarize(items, rows, left_out, args)}

    return router


def _own_campaign_assignment(session, name: str, assignment_id: int) -> None:
    campaign = campaign_by_name(session=session, name=name)
    task_campaign = session.scalar(select(Task.campaign_id).join(Assignment).where(Assignment.id == assignment_id))
    if task_campaign != campaign.id:
        raise HTTPException(404, f"assignment {assignment_id} is not in campaign '{name}'")


def campaign_stats(session, campaign: Campaign, rater: Rater | None = None) -> dict:
    """Counts that show a campaign's progress, and (given a rater) their own number of live judgments."""
    in_campaign = Task.campaign_id == campaign.id
    live = live_judgments_query(campaign.id).subquery()
    return {
        "campaign": campaign.name,
        "tasks": session.scalar(select(func.count(Task.id)).where(in_campaign)),
        "gold_tasks": session.scalar(select(func.count(Task.id)).where(in_campaign, Task.is_gold.is_(True))),
        "complete_tasks": session.scalar(
            select(func.count(Task.id)).where(
                in_campaign, Task.is_gold.is_(False), Task.judgment_count >= Task.target_overlap
            )
        ),
        "judgments": session.scalar(select(func.count()).select_from(live)),
        "raters": session.scalar(select(func.count(func.distinct(live.c.rater_id)))),
        "my_judgments": session.scalar(select(func.count()).select_from(live).where(live.c.rater_id == rater.id))
        if rater is not None
        else None,
    }


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--db`, `--host` and `--port`, then serve until interrupted."""
    from collect.cli import verb_parser

    parser = verb_parser(prog, __doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    main(db=args.db, host=args.host, port=args.port)
    return 0


def main(*, db: str | None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    uvicorn.run(create_app(db), host=host, port=port, log_level="warning")
