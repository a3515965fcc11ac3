"""The tables of the preference store, as typed SQLAlchemy 2 models.

Judgments are append-only. An edit or an undo is a new row whose `supersedes_id` points
at the row it replaces, so the judgments of one (task, rater) pair form a chain whose
head is the live one. Two database indexes, not application code, keep that chain
single: at most one chain start per (task, rater) (a partial unique index on rows that
supersede nothing) and at most one successor per row (`supersedes_id` is unique).
A second submission racing the first therefore fails in the database.
"""

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("rater", "reviewer", "admin")
STAFF_ROLES = ("reviewer", "admin")  # see every rater's work: campaign overview, review queue, export
TASK_KINDS = ("pairwise", "ranking", "rating")
ASSIGNMENT_STATES = ("leased", "judged", "skipped")
# Who stands behind a rater account: a person, a simulated rater answering from an oracle
# (`collect.simulate`), a reward model whose sure answers were taken as labels (`collect.score`),
# or an annotator of another tool whose labels were imported (`collect.import_prompts`).
# Exports and reports say which labels were not a person's.
RATER_KINDS = ("human", "simulated", "model", "imported")


def utcnow() -> datetime:
    """The current time in UTC (naive, as every table stores it)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class StoreError(ValueError):
    """Something cannot be stored or found as asked; the message says why (commands print it as one line)."""


class Base(DeclarativeBase):
    """The declarative base of every Plumb table."""


class Rater(Base):
    """A person who judges (rater), reviews other people's judgments (reviewer) or runs campaigns (admin).

    `kind` says whether a person (`human`) or a simulated rater (`simulated`) gives the judgments.
    """

    __tablename__ = "raters"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="human", server_default="human")
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id, from argon2-cffi
    # Empty since migration 0005 moved tokens to `api_tokens`; SQLite cannot drop a UNIQUE column in place.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Campaign(Base):
    """One data-collection campaign: its task kind, overlap and the definition it was created from."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    definition: Mapped[dict] = mapped_column(JSON)  # the campaign YAML as resolved, so it can be re-read
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Prompt(Base):
    """A prompt of a campaign, as a message list; `external_id` is the dataset's `prompt_id`."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("campaign_id", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    messages: Mapped[list] = mapped_column(JSON)


class Policy(Base):
    """A named model spec whose outputs a campaign compares (a Hub id, a directory, a GGUF file or a URL)."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(Text, default="")


class Candidate(Base):
    """One policy's response to one prompt, with the settings it was generated with."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("prompt_id", "policy_id", "sample_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"), index=True)
    sample_index: Mapped[int] = mapped_column(Integer, default=0)
    completion: Mapped[list] = mapped_column(JSON)  # assistant message list
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Task(Base):
    """A prompt with 2..K candidates to judge, or a gold task whose answer is known.

    `target_overlap` is how many raters should judge it; it grows on disagreement.
    `judgment_count` counts live judgments and is kept in the same transaction as them,
    so scheduling can order by it without counting chains.
    """

    __tablename__ = "tasks"
    # The scheduler reads tasks in these orders and stops at the first free one (see `collect.services.scheduling`).
    __table_args__ = (Index("ix_tasks_schedule", "campaign_id", "is_gold", "judgment_count", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    candidate_ids: Mapped[list] = mapped_column(JSON)  # the canonical order every judgment is stored in
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answer: Mapped[dict | None] = mapped_column(JSON)
    target_overlap: Mapped[int] = mapped_column(Integer)
    judgment_count: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[float] = mapped_column(Float, default=0.0)  # filled by a priority hook (e.g. RM uncertainty)
    # A reward model's answer, written offline by `plumb collect score`: {"preferred": canonical index,
    # "confidence": 0.5..1, "model": name}; None when no model scored the task.
    prelabel: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # "pool": built from imported candidates and scheduled;
    # "arena": a battle a rater started, judged once, never leased.
    source: Mapped[str] = mapped_column(String(20), default="pool", server_default="pool")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# Declared here, where the column exists to sort descending on (the `priority` strategy's order).
Index("ix_tasks_priority", Task.campaign_id, Task.is_gold, Task.priority.desc(), Task.judgment_count, Task.id)


class Assignment(Base):
    """A lease of a task to a rater: the order the candidates were shown in, and when the lease runs out."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("task_id", "rater_id"),
        Index("ix_assignments_rater_state", "rater_id", "state"),
        # Only open leases: the scheduler finds the tasks others hold without reading answered assignments.
        Index(
            "ix_assignments_open_leases",
            "expires_at",
            sqlite_where=text("state = 'leased'"),
            postgresql_where=text("state = 'leased'"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"))
    candidate_order: Mapped[list] = mapped_column(JSON)  # display position -> index into task.candidate_ids
    state: Mapped[str] = mapped_column(String(20), default="leased")
    leased_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Judgment(Base):
    """One submitted answer, never updated: edits and undos are new rows that supersede it.

    Answers are stored in the task's canonical candidate order. Pairwise: `preference` in
    -3..3, positive when the task's first candidate is better, magnitude the strength;
    `both_bad` marks two unacceptable answers. Ranking: `ranks` (1 = best, ties share).
    Rating: `ratings`, one Likert score per candidate. `retracted` rows record an undo.
    `edit` is the rater's improved version of the better response, when they wrote one.
    """

    __tablename__ = "judgments"
    __table_args__ = (
        Index(
            "uq_judgments_chain_start",
            "task_id",
            "rater_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("judgments.id"), unique=True)
    retracted: Mapped[bool] = mapped_column(Boolean, default=False)
    preference: Mapped[int | None] = mapped_column(Integer)
    both_bad: Mapped[bool] = mapped_column(Boolean, default=False)
    ranks: Mapped[list | None] = mapped_column(JSON)
    ratings: Mapped[list | None] = mapped_column(JSON)
    rationale: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[list] = mapped_column(JSON, default=list)
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    edit: Mapped[str | None] = mapped_column(Text)
    # Whether the rater was shown the model's pre-label before answering (None: the task had none), so the
    # quality report can compare raters who saw it with raters who did not (anchoring).
    prelabel_seen: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Adjudication(Base):
    """A reviewer's final answer for a task its raters disagree on; the newest one of a task is the one that counts.

    Answers are in the task's canonical candidate order, as in `Judgment`. Append-only: a
    second adjudication of the same task replaces the first by being newer.
    """

    __tablename__ = "adjudications"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("raters.id"))
    preference: Mapped[int | None] = mapped_column(Integer)
    both_bad: Mapped[bool] = mapped_column(Boolean, default=False)
    ranks: Mapped[list | None] = mapped_column(JSON)
    ratings: Mapped[list | None] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what and when: campaigns created, raters added, imports, judgments, undos."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    rater_id: Mapped[int | None] = mapped_column(ForeignKey("raters.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class ApiToken(Base):
    """A rater's REST API token, stored as its SHA-256: what it may do (`scopes`), until when, and whether revoked.

    A rater may hold several (rotation issues a new one and revokes the old); deactivating a
    rater revokes them all, so reactivating the account revives none.
    """

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class WebSession(Base):
    """A signed-in page session (the cookie's token, as its SHA-256), with its idle and absolute clocks.

    `password_mark` fingerprints the password hash at sign-in: a password reset from any
    process ends every session opened with the old password.
    """

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    password_mark: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
