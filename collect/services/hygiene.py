"""Data hygiene with the models and the store: embeddings, language detection, screening an import, reviewers' flags.

The rules themselves are pure (`collect.domain.hygiene`); this module feeds them. Near
duplicates compare sentence embeddings from the offline all-MiniLM-L6-v2 (the reward
backbone's default, mean-pooled and unit length as sentence-transformers does); the language
check uses py3langid's bundled model. Both load only when a rule that needs them is on.

A flag for reviewers is an audit event `hygiene.flagged` on a prompt or a candidate (the
store has no flag column on tasks, and events need no migration): `flagged_tasks` turns them
into the pool tasks they touch, including tasks made later from a flagged prompt.
"""

import dataclasses
import functools
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import select

from collect.domain.hygiene import HygieneSettings, Row, find_all, settings_from_dict
from collect.domain.hygiene_report import build_report, decide, flags_to_store, resolve_rows
from collect.store import Campaign, CampaignError, Candidate, Prompt, Task, audit_events, campaign_by_name, record_event
from plumb.config import ConfigError
from plumb.paths import write_whole

logger = logging.getLogger(__name__)

FLAG_EVENT = "hygiene.flagged"
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces (its sentence_bert_config.json)
CHUNK = 500  # ids per IN (...) query: SQLite limits the parameters of one statement


def campaign_settings(spec, *, where: str | None = None, **overrides) -> HygieneSettings:
    """The campaign's hygiene settings (its `hygiene` block, defaults for keys it leaves out, its `language`),
    with `overrides` that are not None on top (`plumb collect clean`'s config)."""
    where = where or f"campaign '{spec.name}'"
    values = {**(spec.hygiene or {}), **{k: v for k, v in overrides.items() if v is not None and k != "language"}}
    language = overrides.get("language") or spec.language
    return settings_from_dict(values, where=where, language=language)


def completion_text(messages: list) -> str:
    """A candidate's text: its messages' contents, one after another."""
    return "\n".join(m["content"] for m in messages)


def embedding_text(messages: list) -> str:
    """What a prompt's embedding reads: its turns without a system prompt, which many rows share word for word."""
    return "\n".join(m["content"] for m in messages if m["role"] != "system")


@functools.lru_cache(maxsize=2)
def sentence_encoder(model: str = "default"):
    """(encoder, tokenizer) of a sentence-embedding model, loaded once per process ("default": all-MiniLM-L6-v2)."""
    from transformers import AutoModel, AutoTokenizer  # lazily: importing collect loads no model library

    from plumb.models import resolve_reward_backbone

    source = resolve_reward_backbone(model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    # Keep the end of a long conversation: prompts that share their first turns differ in their last ones.
    tokenizer.truncation_side = "left"
    return AutoModel.from_pretrained(source).eval(), tokenizer


def embed_texts(texts: list[str], *, model: str = "default", batch_size: int = 64) -> np.ndarray:
    """Unit-length sentence embeddings of `texts`, shape (n, dims): the encoder's last layer, mean-pooled."""
    import torch

    encoder, tokenizer = sentence_encoder(model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch: less padding
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            members = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in members], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[members] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    return out


@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # py3langid 0.4: from_model_file, labels

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_languages() -> list[str]:
    """The ISO 639-1 codes the language detector knows."""
    return sorted(_language_identifier().labels)


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language, from py3langid's bundled model."""
    code, probability = _language_identifier().classify(text)
    return str(code), float(probability)


def run_rules(rows: list[Row], settings: HygieneSettings, *, where: str) -> list:
    """Every finding on `rows`, loading the sentence encoder and the language model only for rules that are on."""
    embeddings = detect = None
    if settings.action("near_duplicate_prompt") != "off":
        embeddings = embed_texts([embedding_text(row.prompt) for row in rows], model=settings.embedding_model)
    if settings.action("wrong_language") != "off":
        if settings.language not in known_languages():
            raise ConfigError(
                f"{where}: key 'language': {settings.language!r} is not a language code the detector knows "
                f"({', '.join(known_languages())})"
            )
        detect = detect_language
    return find_all(rows, settings, embeddings=embeddings, detect=detect)


def save_report(report: dict, directory: str | Path, name: str) -> Path:
    """Write the report as `NAME-hygiene-TIME.json` in `directory` (a new file each run); returns its path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe = re.sub(r"[^\w.-]+", "_", name)  # a campaign name may hold a slash or a space
    return write_whole(Path(directory) / f"{safe}-hygiene-{stamp}.json", json.dumps(report, indent=2) + "\n")


def summary(report: dict) -> dict:
    """The report without its findings, settings and examples: the counts a command prints (`table` reads it too)."""
    rules = {rule: {k: v for k, v in entry.items() if k != "examples"} for rule, entry in report["rules"].items()}
    return {**{k: v for k, v in report.items() if k not in ("findings", "settings", "rules")}, "rules": rules}


@dataclass
class Screened:
    """An import after hygiene: the rows to store (dropped ones left out, dropped candidates taken out of theirs),
    the flags to record by prompt_id ({candidate index among the kept, or None: {"rules", ...}}), the report."""

    rows: list
    flags: dict = field(default_factory=dict)
    report: dict | None = None


def screen_import(sessions, spec, rows: list, *, source: str) -> Screened:
    """Apply the campaign's hygiene rules to rows about to be imported (compared with what the campaign holds).
    A campaign without a `hygiene` block passes every row as it is."""
    if spec.hygiene is None:
        return Screened(rows)
    settings = campaign_settings(spec)
    with sessions() as session:
        reference = stored_rows(session, spec.name)
    own = [
        Row(row.messages, [completion_text(c[1]) for c in row.candidates], label=_label(row, i))
        for i, row in enumerate(rows)
    ]
    every = reference + own
    findings = run_rules(every, settings, where=f"campaign '{spec.name}'")
    decisions = decide(findings, settings)
    offset = len(reference)
    protected = {offset + i for i, row in enumerate(rows) if row.judgments or row.gold_ranks is not None}
    outcomes = resolve_rows(decisions, protected)
    by_row = defaultdict(dict)
    for (r, c), flag in flags_to_store(decisions, outcomes).items():
        by_row[r][c] = flag
    kept, flags, dropped_candidates = [], {}, 0

    def dropped(r, c):
        return outcomes.get((r, c), {}).get((r, c)) == "dropped"

    for i, row in enumerate(rows):
        r = offset + i
        if dropped(r, None):
            continue
        keep = [c for c in range(len(row.candidates)) if not dropped(r, c)]
        dropped_candidates += len(row.candidates) - len(keep)
        if len(keep) < len(row.candidates):
            row = dataclasses.replace(row, candidates=[row.candidates[c] for c in keep])
        kept.append(row)
        position = {c: k for k, c in enumerate(keep)}
        if by_row.get(r):
            flags[row.prompt_id] = {None if c is None else position[c]: flag for c, flag in by_row[r].items()}
    report = build_report(
        every,
        findings,
        outcomes,
        settings,
        units="rows and candidates",
        mode="import",
        campaign=spec.name,
        source=source,
        rows=len(rows),
        candidates=sum(len(row.candidates) for row in rows),
        compared_with_stored_prompts=len(reference),
        dropped_rows=len(rows) - len(kept),
        dropped_candidates=dropped_candidates,
        flagged_prompts=sum(1 for f in flags.values() if None in f),
        flagged_candidates=sum(1 for f in flags.values() for c in f if c is not None),
    )
    return Screened(kept, flags, report)


def _label(row, index: int) -> str:
    number = row.number if getattr(row, "number", None) is not None else index
    return f"row {number} (prompt_id {row.prompt_id})"


def stored_rows(session, campaign: str) -> list[Row]:
    """The campaign's stored prompts and their candidates as reference rows (none when the campaign is new)."""
    try:
        stored = campaign_by_name(session=session, name=campaign)
    except CampaignError:
        return []
    prompts = session.execute(
        select(Prompt.id, Prompt.external_id, Prompt.messages)
        .where(Prompt.campaign_id == stored.id)
        .order_by(Prompt.id)
    ).all()
    answers = defaultdict(list)
    query = (
        select(Candidate.prompt_id, Candidate.completion)
        .join(Prompt, Prompt.id == Candidate.prompt_id)
        .where(Prompt.campaign_id == stored.id)
        .order_by(Candidate.id)
    )
    for prompt_id, completion in session.execute(query):
        answers[prompt_id].append(completion_text(completion))
    return [
        Row(messages, answers[pid], label=f"stored prompt '{external}'", reference=True)
        for pid, external, messages in prompts
    ]


def record_import_flags(session, campaign: Campaign, flags: dict) -> int:
    """Record the flags of an import's rows (by prompt_id) on their stored prompts and candidates; returns how many."""
    count = 0
    external = list(flags)
    for start in range(0, len(external), CHUNK):
        part = external[start : start + CHUNK]
        ids = dict(
            session.execute(
                select(Prompt.external_id, Prompt.id).where(
                    Prompt.campaign_id == campaign.id, Prompt.external_id.in_(part)
                )
            ).all()
        )
        candidates = defaultdict(list)  # in the order they were staged, which is the row's
        for cid, pid in session.execute(
            select(Candidate.id, Candidate.prompt_id)
            .where(Candidate.prompt_id.in_(ids.values()))
            .order_by(Candidate.id)
        ):
            candidates[pid].append(cid)
        for prompt_id in part:
            pid = ids[prompt_id]
            for c, flag in flags[prompt_id].items():
                record_flag(session, campaign, pid, None if c is None else candidates[pid][c], flag, by="import")
                count += 1
    return count


def record_flag(session, campaign: Campaign, prompt_id: int, candidate_id: int | None, flag: dict, *, by: str):
    """One reviewer's flag on a prompt (`candidate_id` None) or a candidate: the rules, and whether it replaces
    a drop that would have lost judged work."""
    record_event(
        session=session,
        action=FLAG_EVENT,
        campaign=campaign,
        prompt_id=prompt_id,
        candidate_id=candidate_id,
        rules=list(flag["rules"]),
        instead_of_drop=bool(flag.get("instead_of_drop")),
        by=by,
    )


def stored_flags(session, campaign: Campaign) -> dict[tuple[int, int | None], set[str]]:
    """{(prompt id, candidate id or None): rules} of every hygiene flag recorded in the campaign."""
    flags = defaultdict(set)
    for event in audit_events(session=session, campaign=campaign, action=FLAG_EVENT):
        flags[(event.detail["prompt_id"], event.detail.get("candidate_id"))].update(event.detail["rules"])
    return dict(flags)


def flagged_tasks(session, campaign: Campaign) -> dict[int, list[str]]:
    """{task id: hygiene rules} of the campaign's pool tasks whose prompt or a candidate is flagged for reviewers."""
    flags = stored_flags(session, campaign)
    if not flags:
        return {}
    on_prompt = {pid: rules for (pid, cid), rules in flags.items() if cid is None}
    on_candidate = {cid: rules for (_, cid), rules in flags.items() if cid is not None}
    tasks = session.execute(
        select(Task.id, Task.prompt_id, Task.candidate_ids).where(
            Task.campaign_id == campaign.id, Task.source == "pool"
        )
    )
    found = {}
    for task_id, prompt_id, candidate_ids in tasks:
        rules = set(on_prompt.get(prompt_id, ()))
        for cid in candidate_ids:
            rules |= on_candidate.get(cid, set())
        if rules:
            found[task_id] = sorted(rules)
    return found
