"""Import into a campaign: create it from its YAML when new, then store prompts (and candidates) all or nothing.

Rows are in the format `plumb collect import --help` describes (the contract's prompts
format, optionally with `candidates`, `gold` ranks and `judgments`); other tools' exports and
the field's datasets are read too, with their judgments (`collect.domain.foreign`): each
annotator becomes a rater of kind `imported` (`collect.services.import_labels`). A bad row
stops the import with its row number, and nothing is stored.

An import is written in short transactions, so raters are not locked out of SQLite for
its whole length: the rows, their candidates and tasks go into a hidden staging campaign
(named `.import-...`; scheduling, generation and exports look at one campaign at a time,
so nobody sees it), batch by batch, with their judgments, then one short transaction moves
them into the real campaign. A failed import removes its staging campaign (and the raters it
made); one that was killed leaves it behind, and the next import into the same campaign
removes it. Two imports into one campaign at once: the later one cancels the earlier, which
fails saying so.
"""

import logging
import time
import uuid
from pathlib import Path

from sqlalchemy import delete, select, update

from collect.domain.campaign import as_definition, load_campaign, spec_of
from collect.domain.foreign import convert_records
from collect.services import import_labels
from collect.services.hygiene import record_import_flags, save_report, screen_import
from collect.services.hygiene import summary as hygiene_summary
from collect.services.import_labels import LabelTally, check_labels_fit, label_summary, record_row_judgments
from collect.services.import_rows import ImportRow, parse_row, read_rows, read_source  # noqa: F401 (parse_row's old home)
from collect.store import (
    Campaign,
    CampaignError,
    Candidate,
    Policy,
    Prompt,
    StoreError,
    Task,
    add_candidate,
    add_prompt,
    campaign_by_name,
    campaign_counts,
    create_campaign,
    ensure_policy,
    opened_store,
)
from collect.store.campaigns import prompt_tasks
from collect.store.engine import refresh_statistics
from collect.store.models import utcnow
from plumb.data import DataError

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".import-"  # the name of a staging campaign; a campaign YAML's name cannot start with it
# The longest one import transaction holds SQLite's write lock: a rater's request waits at most about this.
BATCH_SECONDS = 0.5
# Between batches on SQLite: longer than the longest sleep of SQLite's busy handler (100 ms), so a
# request of another process that waits for the lock polls within the pause and gets its turn.
SQLITE_TURN_SECONDS = 0.15


def import_campaign(
    campaign_file: str,
    *,
    source: str | None = None,
    split: str | None = None,
    db: str | None = None,
    label_field: str | None = None,
    report_dir: str | None = None,
) -> dict:
    """Import rows into the campaign (created from `campaign_file` when new); returns what was added, and totals,
    and for a source with labels (or another tool's export) the account of its judgments. With a `hygiene` block
    in the campaign, its rules screen the rows first and their report is written to `report_dir` (default: beside
    `campaign_file`)."""
    spec = load_campaign(campaign_file)
    if spec.name.startswith(STAGING_PREFIX):
        raise DataError(f"{campaign_file}: a campaign name cannot start with '{STAGING_PREFIX}' (import staging)")
    source = source or spec.prompts
    if not source:
        raise DataError(f"{campaign_file}: no `prompts` source in the campaign and no --source given")
    records = read_source(source, split or spec.prompts_split)
    conversion = convert_records(records, source=source, label_field=label_field)
    rows = read_rows(conversion.rows, source=source)
    rater_names = sorted({judgment.rater for row in rows for judgment in row.judgments})

    with opened_store(db) as sessions:
        spec, stored_ids, stored_policies = _stored_campaign(sessions, spec, campaign_file)
        # Before the prompt_id check: a repeated row that hygiene drops is no clash.
        screened = screen_import(sessions, spec, rows, source=source)
        rows = screened.rows
        check_new_prompt_ids(rows, stored_ids, campaign=spec.name, source=source)
        check_labels_fit(rows, spec, fmt=conversion.format, source=source)
        remove_staging(sessions, campaign=spec.name)  # what an import that was killed left behind
        staging_id, policies = _create_staging(sessions, spec, stored_policies)
        tally = LabelTally()
        try:
            raters, created = _create_raters(sessions, staging_id, spec.name, rater_names)
            new_tasks = _stage_rows(
                sessions, staging_id, spec, rows, policies, source=source, raters=raters, tally=tally
            )
            counts = _publish(sessions, staging_id, spec, rows, source=source, flags=screened.flags)
        except BaseException:
            _remove_after_failure(sessions, spec.name, staging_id)
            raise
    counts = {"campaign": spec.name, "rows": len(rows), "new_tasks": new_tasks, **counts}
    if screened.report:  # written once the import has succeeded: a failed import stored nothing to report on
        path = save_report(screened.report, report_dir or Path(campaign_file).resolve().parent, spec.name)
        counts.update(hygiene=hygiene_summary(screened.report), hygiene_report=str(path))
        logger.info("Hygiene report of the import into '%s': %s", spec.name, path)
    if conversion.format != "plumb" or rater_names:
        counts.update(label_summary(conversion, tally, raters=len(raters), new_raters=len(created)))
        _warn_about_what_is_missing(counts, source)
    logger.info("Imported %d rows into campaign '%s': %s", len(rows), spec.name, counts)
    return counts


def _warn_about_what_is_missing(counts: dict, source: str) -> None:
    if counts["unannotated"]:
        logger.warning(
            "%s: %d of %d %s rows have no annotations: imported as prompts and candidates only",
            source,
            counts["unannotated"],
            counts["rows"],
            counts["format"],
        )
    for reason, count in counts["left_out"].items():
        logger.warning("%s: left out %d: %s", source, count, reason)


def _stored_campaign(sessions, spec, campaign_file: str):
    """The campaign's stored spec (it wins over the file), its prompt ids and its policy names, oldest first."""
    with sessions() as session:
        try:
            campaign = campaign_by_name(session=session, name=spec.name)
        except CampaignError:
            return spec, set(), []
        if campaign.definition != as_definition(spec):
            logger.warning("Campaign '%s' exists: its stored definition is kept, not %s", spec.name, campaign_file)
        prompt_ids = session.scalars(select(Prompt.external_id).where(Prompt.campaign_id == campaign.id))
        policies = session.scalars(select(Policy.name).where(Policy.campaign_id == campaign.id).order_by(Policy.id))
        return spec_of(campaign), set(prompt_ids), list(policies)


def check_new_prompt_ids(rows: list[ImportRow], stored: set[str], *, campaign: str, source: str) -> None:
    """`DataError` naming the first row whose prompt_id is in the campaign already or earlier in the rows."""
    seen = set(stored)
    for index, row in enumerate(rows):
        if row.prompt_id in seen:
            raise DataError(
                f"{source}: row {_number(row, index)}: prompt_id '{row.prompt_id}' is already in campaign '{campaign}'"
            )
        seen.add(row.prompt_id)


def _create_staging(sessions, spec, stored_policies: list[str]) -> tuple[int, dict[str, Policy]]:
    """A staging campaign, and its policies by name: first the campaign's own and the spec's, in the order
    they are (or will be) created there, so tasks order candidates as `build_tasks` does (by policy id)."""
    # Not `create_campaign`: a staging campaign is no event of the audit trail.
    with sessions.begin() as session:
        staging = Campaign(name=f"{STAGING_PREFIX}{uuid.uuid4().hex}", kind=spec.kind, definition=as_definition(spec))
        session.add(staging)
        session.flush()
        names = dict.fromkeys([*stored_policies, *(policy.name for policy in spec.policies)])
        policies = {name: ensure_policy(session=session, campaign=staging, name=name) for name in names}
        return staging.id, policies


def _create_raters(sessions, staging_id: int, name: str, names: list[str]) -> tuple[dict[str, int], list[int]]:
    """The imported raters (created when new, batch by batch): ids by name, and the ids created, which the staging
    campaign's definition keeps so that removing it removes them."""
    raters, created, start = {}, [], 0
    while start < len(names):
        with sessions.begin() as session:
            staging = _staging(session, staging_id, name)
            began, end = time.monotonic(), start
            while end < len(names) and (end == start or time.monotonic() - began < BATCH_SECONDS):
                found, made = import_labels.ensure_imported_raters(session, [names[end]])
                raters.update(found)
                created += made
                end += 1
            staging.definition = {**staging.definition, import_labels.NEW_RATERS_KEY: list(created)}
        start = end
        _take_turns(sessions, more=start < len(names))
    return raters, created


def _take_turns(sessions, *, more: bool) -> None:
    if sessions.kw["bind"].dialect.name == "sqlite" and more:
        time.sleep(SQLITE_TURN_SECONDS)


def _stage_rows(
    sessions, staging_id: int, spec, rows: list[ImportRow], policies: dict, *, source: str, **labels
) -> int:
    """Store the rows (and their judgments) in the staging campaign, one short transaction per batch; returns how many
    tasks were made."""
    new_tasks, start = 0, 0
    while start < len(rows):
        with sessions.begin() as session:
            staging = _staging(session, staging_id, spec.name)
            began, index = time.monotonic(), start
            while index < len(rows) and (index == start or time.monotonic() - began < BATCH_SECONDS):
                try:
                    new_tasks += stage_row(
                        session, staging, rows[index], policies, overlap=spec.raters_per_task, **labels
                    )
                except StoreError as error:
                    raise DataError(f"{source}: row {_number(rows[index], index)}: {error}") from None
                index += 1
        start = index
        _take_turns(sessions, more=start < len(rows))
    return new_tasks


def _staging(session, staging_id: int, name: str) -> Campaign:
    staging = session.get(Campaign, staging_id)
    if staging is None:
        raise DataError(f"the import into campaign '{name}' was cancelled by another import into it; run it again")
    return staging


def stage_row(
    session,
    staging: Campaign,
    row: ImportRow,
    policies: dict[str, Policy],
    *,
    overlap: int,
    raters: dict[str, int] | None = None,
    tally: LabelTally | None = None,
) -> int:
    """Store one row's prompt, candidates, tasks and judgments (by `raters`' ids, counted in `tally`) in the staging
    campaign; returns how many tasks it made."""
    prompt = add_prompt(session=session, campaign=staging, external_id=row.prompt_id, messages=row.messages)
    candidates = []
    for policy_name, completion, settings in row.candidates:
        if policy_name not in policies:
            policies[policy_name] = ensure_policy(session=session, campaign=staging, name=policy_name)
        samples = sum(1 for name, *_ in row.candidates[: len(candidates)] if name == policy_name)
        candidate = add_candidate(
            session=session,
            prompt=prompt,
            policy=policies[policy_name],
            completion=completion,
            settings={"source": "import", **settings},
            sample_index=samples,
        )
        candidates.append(candidate)
    tasks = row_tasks(staging, prompt, candidates, gold_ranks=row.gold_ranks, overlap=overlap)
    session.add_all(tasks)
    if row.judgments:
        session.flush()  # the tasks' ids, for the judgments' assignments
        record_row_judgments(session, row, candidates, tasks, raters, tally, now=utcnow())
    return len(tasks)


def row_tasks(campaign: Campaign, prompt: Prompt, candidates: list, *, gold_ranks, overlap: int) -> list[Task]:
    """The tasks `build_tasks` makes of a new prompt: the same groups, candidates in its order (policy, then id)."""
    gold = None
    if gold_ranks is not None:
        gold = {"candidate_ranks": {str(c.id): rank for c, rank in zip(candidates, gold_ranks)}}
    ids = [c.id for c in sorted(candidates, key=lambda c: (c.policy_id, c.id))]
    return prompt_tasks(campaign, prompt, ids, overlap=overlap, gold_answer=gold)


def _number(row: ImportRow, index: int) -> int:
    """The row's number in the source (hygiene may have left rows out before it)."""
    return index if row.number is None else row.number


def _publish(sessions, staging_id: int, spec, rows: list[ImportRow], *, source: str, flags: dict | None = None) -> dict:
    """Move everything staged into the campaign (created when new) in one transaction, with the hygiene flags of its
    rows (by prompt_id); returns its counts."""
    with sessions.begin() as session:
        _staging(session, staging_id, spec.name)
        try:
            campaign = campaign_by_name(session=session, name=spec.name)
        except CampaignError:
            campaign = create_campaign(session=session, name=spec.name, kind=spec.kind, definition=as_definition(spec))
        for policy in spec.policies:
            ensure_policy(session=session, campaign=campaign, name=policy.name, spec=policy.model)
        _check_no_prompt_added_meanwhile(session, staging_id, campaign, rows, source=source)
        quick = {"synchronize_session": False}  # bulk updates of rows no session object holds
        staged_policies = select(Policy).where(Policy.campaign_id == staging_id).order_by(Policy.id)
        for staged in session.scalars(staged_policies).all():  # new ones are created in the staged order
            policy = ensure_policy(session=session, campaign=campaign, name=staged.name)
            move = update(Candidate).where(Candidate.policy_id == staged.id).values(policy_id=policy.id)
            session.execute(move, execution_options=quick)
        for table in (Prompt, Task):
            move = update(table).where(table.campaign_id == staging_id).values(campaign_id=campaign.id)
            session.execute(move, execution_options=quick)
        session.execute(delete(Policy).where(Policy.campaign_id == staging_id), execution_options=quick)
        session.execute(delete(Campaign).where(Campaign.id == staging_id), execution_options=quick)
        if flags:
            record_import_flags(session, campaign, flags)
        refresh_statistics(session)
        return campaign_counts(session=session, campaign=campaign)


def _check_no_prompt_added_meanwhile(session, staging_id: int, campaign: Campaign, rows, *, source: str) -> None:
    staged = select(Prompt.external_id).where(Prompt.campaign_id == staging_id)
    clash = session.scalar(
        select(Prompt.external_id).where(Prompt.campaign_id == campaign.id, Prompt.external_id.in_(staged)).limit(1)
    )
    if clash is not None:
        index = next(_number(row, i) for i, row in enumerate(rows) if row.prompt_id == clash)
        raise DataError(f"{source}: row {index}: prompt_id '{clash}' is already in campaign '{campaign.name}'")


def _remove_after_failure(sessions, campaign: str, staging_id: int) -> None:
    try:
        remove_staging(sessions, campaign=campaign, only=staging_id)
    except Exception as error:  # the import's own error is the one to report; the next import removes this
        logger.warning("Could not remove the unfinished import into '%s' (the next import will): %s", campaign, error)


def remove_staging(sessions, *, campaign: str, only: int | None = None) -> int:
    """Delete the staging campaigns of imports into `campaign` (or just staging campaign `only`); returns how many."""
    with sessions.begin() as session:
        found = session.scalars(select(Campaign).where(Campaign.name.startswith(STAGING_PREFIX, autoescape=True)))
        stagings = [c for c in found if c.definition.get("name") == campaign and only in (None, c.id)]
        ids = [c.id for c in stagings]
        if ids:
            quick = {"synchronize_session": False}
            import_labels.remove_staged_labels(session, ids)
            prompts = select(Prompt.id).where(Prompt.campaign_id.in_(ids))
            session.execute(delete(Task).where(Task.campaign_id.in_(ids)), execution_options=quick)
            session.execute(delete(Candidate).where(Candidate.prompt_id.in_(prompts)), execution_options=quick)
            for table in (Prompt, Policy):
                session.execute(delete(table).where(table.campaign_id.in_(ids)), execution_options=quick)
            session.execute(delete(Campaign).where(Campaign.id.in_(ids)), execution_options=quick)
            made = [rater for c in stagings for rater in c.definition.get(import_labels.NEW_RATERS_KEY, [])]
            import_labels.remove_unused_raters(session, made)
            logger.info("Removed %d unfinished import(s) into campaign '%s'", len(ids), campaign)
        return len(ids)


def ensure_campaign(sessions, *, campaign: str, campaign_file: str | None, db: str | None) -> None:
    """Import `campaign_file` (the campaign and its prompts) when the store has no campaign named `campaign`."""
    with sessions() as session:
        try:
            campaign_by_name(session=session, name=campaign)
            return
        except CampaignError:
            if not campaign_file:
                raise
    defined = load_campaign(campaign_file).name
    if defined != campaign:
        raise CampaignError(f"{campaign_file}: defines campaign '{defined}', not '{campaign}' (the `campaign` key)")
    counts = import_campaign(campaign_file, db=db)
    logger.info("Imported campaign '%s': %d prompts", campaign, counts["prompts"])
