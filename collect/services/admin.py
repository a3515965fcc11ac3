"""What admins do in the app, as plain functions over the store: manage raters, export and push, watch progress.

Every function checks the caller's role itself, because a hidden tab is still callable
through the Gradio API: rater management and export are for admins, the progress figures
for reviewers and admins. Each runs in one transaction that commits before it returns.
"""

import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from collect.services import tokens
from collect.services.adjudication import disagreement_queue
from collect.services.drift import drift_over_time
from collect.services.export.dataset import PushError, push, save_export
from collect.services.export.items import load_items
from collect.services.export.rows import FORMATS, ExportArguments
from collect.store import (
    STAFF_ROLES,
    Adjudication,
    Judgment,
    Prompt,
    Rater,
    Task,
    campaign_by_name,
    create_rater,
    live_judgments_per_rater,
    live_judgments_query,
    rater_by_name,
    require_role,
)
from collect.store.api_tokens import issue_token, revoke_tokens
from collect.store.raters import all_raters, set_active, set_password, set_role
from plumb.data import DataError

PROMPT_EXCERPT = 80  # characters of the prompt in the progress table: enough to recognise it on one line


@dataclass
class ExportResult:
    """Where an export went (its directory and, when asked, a zip of it), its summary.json and the dataset."""

    directory: Path
    archive: Path | None
    summary: dict
    dataset: object  # datasets.Dataset, imported only when exporting


def _admin(session, name: str) -> Rater:
    return require_role(session=session, name=name, roles=("admin",), what="this")


def _staff(session, name: str) -> Rater:
    return require_role(session=session, name=name, roles=STAFF_ROLES, what="campaign progress")


# Raters


def rater_table(sessions, *, campaign: str, admin_name: str) -> list[dict]:
    """Every rater: name, role, active, and their live judgments in `campaign`."""
    with sessions.begin() as session:
        _admin(session, admin_name)
        live = live_judgments_query(campaign_by_name(session=session, name=campaign).id).subquery()
        counts = dict(session.execute(select(live.c.rater_id, func.count()).group_by(live.c.rater_id)).all())
        return [
            {"name": r.name, "role": r.role, "active": r.active, "judgments": counts.get(r.id, 0)}
            for r in all_raters(session=session)
        ]


def add_rater(sessions, *, admin_name: str, name: str, role: str, password: str | None = None) -> str:
    """Add a rater; with no password one is generated. Returns a message with the password and API token, shown once."""
    name = (name or "").strip()
    with sessions.begin() as session:
        _admin(session, admin_name)
        generated = password is None
        password = secrets.token_urlsafe(12) if generated else password
        _, token = create_rater(session=session, name=name, role=role, password=password)
    shown = f" Password (shown once): `{password}`." if generated else ""
    return f"Added {role} '{name}'.{shown} API token (shown once): `{token}`"


def change_role(sessions, *, admin_name: str, name: str, role: str) -> str:
    """Give rater `name` a new role (rater, reviewer, admin)."""
    name = (name or "").strip()
    with sessions.begin() as session:
        rater = set_role(session=session, name=name, role=role, by=_admin(session, admin_name))
        return f"'{rater.name}' is now a {rater.role}."


def change_active(sessions, *, admin_name: str, name: str, active: bool) -> str:
    """Deactivate (no more sign-ins, API calls or page actions) or reactivate rater `name`."""
    name = (name or "").strip()
    with sessions.begin() as session:
        admin = _admin(session, admin_name)
        rater = set_active(session=session, name=name, active=active, by=admin)
        if not active:  # so that reactivating the account later revives no token
            revoke_tokens(session=session, rater=rater, by=admin)
        return f"'{rater.name}' is {'active again' if rater.active else 'deactivated: they can no longer sign in'}."


def new_api_token(sessions, *, admin_name: str, name: str, scopes: list[str] | None = None, expires: str = "") -> str:
    """Rotate rater `name`'s API access: revoke their live tokens, issue one (scopes, an optional YYYY-MM-DD expiry)."""
    name = (name or "").strip()
    expires_at = datetime.fromisoformat(expires.strip()) if (expires or "").strip() else None
    with sessions.begin() as session:  # one transaction: a refused new token leaves the old ones working
        admin, rater = _admin(session, admin_name), rater_by_name(session=session, name=name)
        revoked = revoke_tokens(session=session, rater=rater, by=admin)
        issued = issue_token(session=session, rater=rater, scopes=scopes or None, expires_at=expires_at, by=admin)
        shown = tokens.shown(*issued)
    until = f", until {shown['expires_at']}" if shown["expires_at"] else ""
    return (
        f"New API token for '{name}' ({', '.join(shown['scopes'])}{until}), shown once: `{shown['token']}`"
        f" ({revoked} older token(s) revoked)."
    )


def revoke_api_tokens(sessions, *, admin_name: str, name: str) -> str:
    """Revoke every live API token of rater `name`."""
    name = (name or "").strip()
    return f"Revoked {tokens.revoke(sessions, name=name, by=admin_name)} API token(s) of '{name}'."


def reset_password(sessions, *, admin_name: str, name: str, password: str | None = None) -> str:
    """Set rater `name`'s password; with none, generate one. Returns a message (a generated password shown once)."""
    name = (name or "").strip()  # as typed into a form: "alice " is alice, as when she was added
    with sessions.begin() as session:
        admin = _admin(session, admin_name)
        generated = password is None
        password = secrets.token_urlsafe(12) if generated else password
        set_password(session=session, name=name, password=password, by=admin)
    return f"New password for '{name}'" + (f" (shown once): `{password}`" if generated else " saved.")


# Export and push


def export_campaign(
    sessions,
    *,
    campaign: str,
    admin_name: str,
    format: str,
    output_root: str | Path,
    archive_dir: str | Path | None = None,
    per_rater: bool = False,
    include_identity_leaks: bool = False,
) -> ExportResult:
    """Export `campaign` in `format` to a new directory under `output_root`/exports (zipped into `archive_dir`)."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format '{format}' (choose one of: {', '.join(FORMATS)})")
    with sessions.begin() as session:
        require_role(session=session, name=admin_name, roles=STAFF_ROLES, what="exporting")
        stored_campaign = campaign_by_name(session=session, name=campaign)
        items = load_items(session, stored_campaign.id)
        guidelines = stored_campaign.definition.get("guidelines", "")
    directory = _new_directory(Path(output_root) / "exports", f"{campaign}-{format}")
    args = ExportArguments(
        campaign=campaign,
        format=format,
        output_dir=str(directory),
        per_rater=per_rater,
        include_identity_leaks=include_identity_leaks,
    )
    dataset, summary = save_export(items, args, guidelines=guidelines)
    archive = None
    if archive_dir is not None:
        archive = Path(shutil.make_archive(str(Path(archive_dir) / directory.name), "zip", root_dir=directory))
    return ExportResult(directory=directory, archive=archive, summary=summary, dataset=dataset)


def push_campaign(
    sessions,
    *,
    campaign: str,
    admin_name: str,
    format: str,
    repo: str,
    output_root: str | Path,
    per_rater: bool = False,
    include_identity_leaks: bool = False,
) -> str:
    """Export as `export_campaign` does, then push the dataset and its card to the Hub repo `repo`."""
    with sessions.begin() as session:
        _admin(session, admin_name)  # exporting is a reviewer's too; publishing is an admin's
    repo = (repo or "").strip()
    if not repo:
        raise PushError("give the Hub dataset repo to push to (like team/preferences)")
    result = export_campaign(
        sessions,
        campaign=campaign,
        admin_name=admin_name,
        format=format,
        output_root=output_root,
        per_rater=per_rater,
        include_identity_leaks=include_identity_leaks,
    )
    push(result.dataset, result.directory, repo)
    return f"Pushed {result.summary['rows']} {format} rows to the Hub dataset repo '{repo}'."


def _new_directory(parent: Path, stem: str) -> Path:
    # One directory per export, named for what and when, so an earlier export is never overwritten.
    stem = re.sub(r"[^\w.-]+", "-", stem)
    base = parent / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    directory, copy = base, 1
    while directory.exists():
        copy += 1
        directory = base.with_name(f"{base.name}-{copy}")
    directory.mkdir(parents=True)
    return directory


# Progress


def campaign_activity(sessions, *, campaign: str, staff_name: str) -> dict:
    """Live judgment times, live judgments per rater, per-task progress rows and people's drift figures per block of
    judgments (`drift.drift_over_time`), for reviewers and admins."""
    with sessions.begin() as session:
        _staff(session, staff_name)
        stored_campaign = campaign_by_name(session=session, name=campaign)
        times = sorted(session.scalars(live_judgments_query(stored_campaign.id).with_only_columns(Judgment.created_at)))
        per_rater = live_judgments_per_rater(session, stored_campaign.id)
        tasks = session.execute(
            select(Task, Prompt.messages)
            .join(Prompt, Prompt.id == Task.prompt_id)
            .where(Task.campaign_id == stored_campaign.id, Task.source == "pool")
            .order_by(Task.id)
        ).all()
        adjudicated = set(
            session.scalars(select(Adjudication.task_id).join(Task).where(Task.campaign_id == stored_campaign.id))
        )
        disputed = set(disagreement_queue(session, stored_campaign))
        progress = [
            {
                "task": t.id,
                "prompt": prompt_excerpt(messages),
                "gold": t.is_gold,
                "judgments": t.judgment_count,
                "target": t.target_overlap,
                "status": _status(t, t.id in disputed, t.id in adjudicated),
            }
            for t, messages in tasks
        ]
        drift_blocks = drift_over_time(session, stored_campaign, "human")  # people's work, as the alerts watch it
    return {"times": times, "per_rater": per_rater, "tasks": progress, "drift": drift_blocks}


def prompt_excerpt(messages: list[dict], *, limit: int = PROMPT_EXCERPT) -> str:
    """The prompt's last user message on one line, cut to `limit` characters with "…", so staff know the task."""
    asked = [m["content"] for m in messages if m.get("role") == "user"] or [m["content"] for m in messages]
    text = " ".join(str(asked[-1]).split()) if asked else ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def campaign_quality(sessions, *, campaign: str, staff_name: str, plot_dir: str) -> tuple[dict | None, str | None, str]:
    """(the quality report of the live pairwise judgments or None, the leaderboard plot's PNG path or None,
    a note on what is missing, "" when nothing is), for reviewers and admins."""
    from collect.domain.quality.judgments import judgment_table
    from collect.domain.quality.report import QualitySettings, quality_figures, split_models
    from collect.services.arena.plots import plot_ratings
    from collect.services.arena.ratings import count_battles, leaderboard
    from collect.services.export.records import battle_records, judgment_records

    with sessions.begin() as session:
        _staff(session, staff_name)
        items = load_items(session, campaign_by_name(session=session, name=campaign).id)
        records, _ = judgment_records(items)
        battles = battle_records(items)
    if not records:
        return None, None, "No pairwise judgments yet."
    humans, model = split_models(judgment_table(records, source=campaign))  # auto-labels are no rater's
    if not len(humans):
        return None, None, "No judgments by people yet (only a model's auto-labels)."
    report, _ = quality_figures(humans, QualitySettings(), model=model)
    report["simulated_judgments"] = sum(bool(record["simulated"]) for record in records)
    if not battles:
        return report, None, "No battles between different policies yet: no leaderboard."
    try:
        counts = count_battles(
            *([b[key] for b in battles] for key in ("model_a", "model_b", "winner")), source=campaign
        )
        # A small ridge keeps ratings finite while a policy has not lost yet, early in a campaign.
        board = leaderboard(counts, l2=0.01, rounds=100, seed=0)
    except (DataError, ValueError) as error:
        return report, None, f"No leaderboard yet: {error}"
    path = Path(plot_dir) / f"ratings-{campaign}.png"
    plot_ratings(board, path)
    return report, str(path), ""


def _status(task: Task, disputed: bool, adjudicated: bool) -> str:
    if disputed:
        return "waiting for a reviewer"
    if adjudicated:
        return "adjudicated"
    if task.judgment_count >= task.target_overlap:
        return "complete"
    return "in progress" if task.judgment_count else "not started"
