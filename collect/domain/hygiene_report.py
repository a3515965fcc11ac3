"""What the hygiene rules' findings come to: one decision per prompt or candidate, what happened to the rows or
tasks they touch, and the report (counts and examples per rule, every finding) with its short table.

A prompt or candidate found by several rules gets the strongest of their actions (drop, then
flag, then keep). Nothing a rater judged is dropped: a row that carries judgments or gold
ranks (on import), or a task with a judgment or an open lease (in a stored campaign), is
flagged instead, and the report counts it as `flagged_instead_of_dropped`.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass

from collect.domain.hygiene import RULES, STRENGTH, Finding, HygieneSettings, Row

OUTCOMES = ("kept", "flagged", "dropped", "flagged_instead_of_dropped")
Target = tuple[int, int | None]  # (row, candidate); candidate None: the row's prompt
SNIPPET = 160  # characters of an example's text in the report


@dataclass(frozen=True)
class Decision:
    """What to do with one prompt or candidate: the strongest action of the rules that found it, and those rules."""

    action: str
    rules: tuple[str, ...]


def decide(findings: list[Finding], settings: HygieneSettings) -> dict[Target, Decision]:
    """One decision per prompt or candidate that some rule found."""
    rules = defaultdict(list)
    for finding in findings:
        rules[(finding.row, finding.candidate)].append(finding.rule)
    return {
        target: Decision(max((settings.action(rule) for rule in found), key=STRENGTH.get), tuple(dict.fromkeys(found)))
        for target, found in rules.items()
    }


def resolve_rows(decisions: dict[Target, Decision], protected: set[int]) -> dict[Target, dict]:
    """On import, the outcome of each decided prompt or candidate: {target: {target: outcome}}.

    A dropped prompt takes its row, candidates and all; a row in `protected` (it carries judgments or gold
    ranks) loses nothing: its drops become flags.
    """
    dropped_rows = {r for (r, c), d in decisions.items() if c is None and d.action == "drop" and r not in protected}
    outcomes = {}
    for (r, c), decision in decisions.items():
        if r in dropped_rows:
            outcome = "dropped"
        else:
            outcome = _outcome(decision.action, busy=r in protected)
        outcomes[(r, c)] = {(r, c): outcome}
    return outcomes


def resolve_tasks(
    decisions: dict[Target, Decision], tasks: list[tuple[int, int, list[int]]], busy: set[int]
) -> dict[Target, dict]:
    """In a stored campaign, the outcome of each task a decision touches: {target: {task id: outcome}}.

    `tasks` are (task id, row, candidate indices in that row); a task takes the strongest action of its prompt
    and candidates, and a `busy` task (judged, or leased to a rater now) is flagged instead of dropped.
    """
    outcomes = defaultdict(dict)
    for task_id, r, candidates in tasks:
        targets = [t for t in [(r, None), *((r, c) for c in candidates)] if t in decisions]
        if not targets:
            continue
        action = max((decisions[t].action for t in targets), key=STRENGTH.get)
        outcome = _outcome(action, busy=task_id in busy)
        for target in targets:
            outcomes[target][task_id] = outcome
    return dict(outcomes)


def _outcome(action: str, *, busy: bool) -> str:
    if action == "drop":
        return "flagged_instead_of_dropped" if busy else "dropped"
    return "flagged" if action == "flag" else "kept"


def flags_to_store(decisions: dict[Target, Decision], outcomes: dict[Target, dict]) -> dict[Target, dict]:
    """The prompts and candidates to flag for reviewers: {target: {"rules": [...], "instead_of_drop": bool}}.

    A target is flagged when its own action is flag or drop and some row or task it touches stays flagged.
    """
    flags = {}
    for target, decision in decisions.items():
        left = set(outcomes.get(target, {}).values())
        if decision.action in ("flag", "drop") and left & {"flagged", "flagged_instead_of_dropped"}:
            flags[target] = {"rules": list(decision.rules), "instead_of_drop": decision.action == "drop"}
    return flags


def build_report(
    rows: list[Row],
    findings: list[Finding],
    outcomes: dict[Target, dict],
    settings: HygieneSettings,
    /,
    *,
    units: str,
    **context,  # what the report is about (campaign, source, row counts): positional names above stay free
) -> dict:
    """The report: per rule its action, what it found and what became of the `units` (rows and candidates, or
    tasks) it touched, with a few examples; then every finding with its outcome."""
    per_rule = defaultdict(dict)  # rule -> {unit: outcome}: a unit found twice by one rule counts once
    for finding in findings:
        per_rule[finding.rule].update(outcomes.get((finding.row, finding.candidate), {}))
    rules = {}
    for rule in RULES:
        mine = [f for f in findings if f.rule == rule]
        counts = Counter(per_rule[rule].values())
        rules[rule] = {
            "action": settings.action(rule),
            "found": len(mine),
            **{outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
            "examples": [_example(rows, f) for f in mine[: settings.examples]],
        }
    every_unit = {unit: outcome for found in outcomes.values() for unit, outcome in found.items()}
    return {
        **context,
        "units": units,
        "settings": {key: value for key, value in vars(settings).items()},
        "totals": {outcome: Counter(every_unit.values()).get(outcome, 0) for outcome in OUTCOMES},
        "rules": rules,
        "findings": [
            {
                "rule": f.rule,
                "where": rows[f.row].label,
                "candidate": f.candidate,
                "detail": f.detail,
                "outcome": dict(Counter(outcomes.get((f.row, f.candidate), {}).values())),
            }
            for f in findings
        ],
    }


def _example(rows: list[Row], finding: Finding) -> dict:
    row = rows[finding.row]
    text = row.prompt[-1]["content"] if finding.candidate is None else row.candidates[finding.candidate]
    text = " ".join(text.split())
    return {
        "where": row.label,
        "candidate": finding.candidate,
        "detail": finding.detail,
        "text": text if len(text) <= SNIPPET else text[: SNIPPET - 3] + "...",
    }


def table(report: dict) -> str:
    """The report's counts as a short fixed-width table, one line per rule, then the totals."""
    head = ("rule", "action", "found", "kept", "flagged", "dropped", "flag not drop")
    lines = [head]
    for rule, entry in report["rules"].items():
        lines.append((rule, entry["action"], *(str(entry[k]) for k in ("found", *OUTCOMES))))
    totals = report["totals"]
    lines.append((f"{report['units']} (all rules)", "", "", *(str(totals[k]) for k in OUTCOMES)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        for line in lines
    )
