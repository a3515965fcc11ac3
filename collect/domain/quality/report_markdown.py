"""The quality report as Markdown tables for the Campaign tab: each statistic with one line on what it
measures and what counts as good, so staff can read it without a statistics book.

Bands: Landis & Koch (1977) for kappa; Krippendorff (2004) for alpha, 0.8 good and 0.667 the
lowest for tentative conclusions. When the judgments carry pre-labels, a last section shows the
reward model's accuracy per confidence (to pick an auto-label threshold) and anchoring.
"""

import html

# (upper bound, name) of Landis & Koch's bands, lowest first; a kappa above the last is "almost perfect".
KAPPA_BANDS = ((0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))
KAPPA_GOOD = "Landis & Koch: < 0 poor, to 0.2 slight, 0.4 fair, 0.6 moderate, 0.8 substantial, above almost perfect"
ALPHA_GOOD = "≥ 0.8 good, ≥ 0.667 tentative, lower: do not rely on the labels"
MEAN_AGREEMENT = (
    "The export's `mean_agreement` is higher: it averages, per task, the share of raters who gave the most "
    "common answer, so a task judged once counts 1 and a 1-1 split 0.5, where here that split counts 0."
)

AGREEMENT_ROWS = (  # (key, name, what it measures, what is good, scale)
    (
        "raw_agreement",
        "raw agreement",
        "share of the tasks two raters both judged on which they gave the same answer (a tie is an answer), "
        "averaged over pairs of raters",
        "no correction for chance: read it with kappa. " + MEAN_AGREEMENT,
        None,
    ),
    (
        "raw_agreement_no_ties",
        "raw agreement without ties",
        "the same, leaving out tasks where either rater said tie",
        "no correction for chance",
        None,
    ),
    (
        "fleiss_kappa",
        "Fleiss' kappa",
        "agreement of all raters beyond what chance gives, on the tasks judged by the usual number of raters",
        KAPPA_GOOD,
        "kappa",
    ),
    (
        "krippendorff_alpha_nominal",
        "Krippendorff's alpha (nominal)",
        "agreement beyond chance over every task judged twice or more; any two different answers disagree alike",
        ALPHA_GOOD,
        "alpha",
    ),
    (
        "krippendorff_alpha_ordinal",
        "Krippendorff's alpha (ordinal)",
        "the same on the answer with its strength (much / slightly better), so a near miss counts less",
        ALPHA_GOOD,
        "alpha",
    ),
)

RATER_COLUMNS = (  # (key, title, kind, what it says)
    ("judgments", "judged", "int", "live judgments"),
    ("gold_accuracy", "gold", "share", "share of gold tasks answered as known (low: not reading or not following)"),
    ("self_consistency", "repeat", "share", "share of repeated tasks answered as the first time"),
    ("intransitivity", "cycles", "share", "share of their A>B>C triads that loop back (A>B>C>A)"),
    ("length_bias", "longer", "share", "share of decided pairs won by the longer answer (far from 50%: length bias)"),
    ("consensus_agreement", "with others", "share", "share of tasks where they sided with the other raters' majority"),
    ("left_win_rate", "left", "share", "share of decided pairs won by the left side (sides are random: about 50%)"),
    ("position_p_value", "p(left)", "p", "chance of so lopsided a left share if sides did not matter (< 0.01: bias)"),
    ("tie_rate", "ties", "share", "share of ties and 'both bad'"),
    ("median_seconds", "median s", "seconds", "median seconds per judgment"),
    ("too_fast", "too fast", "share", "share of judgments quicker than skimming both answers takes"),
)


def kappa_band(kappa: float) -> str:
    """Landis & Koch's name for a kappa value: poor, slight, fair, moderate, substantial or almost perfect."""
    return next((name for upper, name in KAPPA_BANDS if kappa <= upper), "almost perfect")


def alpha_band(alpha: float) -> str:
    """Krippendorff's reading of an alpha value: good (≥ 0.8), tentative (≥ 0.667) or unreliable."""
    return "good" if alpha >= 0.8 else "tentative" if alpha >= 0.667 else "unreliable"


def shown(value, kind: str) -> str:
    """A figure for a table cell: shares as percentages, coefficients to 3 decimals, "-" when undefined."""
    if value is None:
        return "-"
    formats = {"int": "{:d}", "share": "{:.0%}", "p": "{:.2g}", "seconds": "{:.1f}", "coef": "{:.3f}"}
    return formats[kind].format(value)


def cell(text: str) -> str:
    """Text (a rater's name) as one table cell: escaped, and no `|` that would end the cell early."""
    return html.escape(" ".join(str(text).split())).replace("|", "\\|")


def agreement_markdown(agreement: dict) -> str:
    """The agreement statistics as a table: value (with its band), what it measures, what is good."""
    lines = ["| statistic | value | what it measures | what is good |", "|---|---:|---|---|"]
    for key, name, measures, good, scale in AGREEMENT_ROWS:
        value = agreement[key]
        band = ""
        if value is not None and scale == "kappa":
            band = f" ({kappa_band(value)})"
        elif value is not None and scale == "alpha":
            band = f" ({alpha_band(value)})"
        lines.append(f"| {name} | {shown(value, 'coef')}{band} | {measures} | {good} |")
    pairs = agreement["cohen_kappa_pairs"]
    lines += ["", f"**Cohen's kappa** per pair of raters (agreement of two raters beyond chance; {KAPPA_GOOD}):"]
    if not pairs:
        lines.append("no pair of raters has judged enough tasks in common yet.")
        return "\n".join(lines)
    lines += ["", "| rater | rater | tasks in common | kappa |", "|---|---|---:|---:|"]
    for pair in pairs:
        kappa = pair["kappa"]
        value = "-" if kappa is None else f"{kappa:.3f} ({kappa_band(kappa)})"
        lines.append(f"| {cell(pair['rater_a'])} | {cell(pair['rater_b'])} | {pair['shared']} | {value} |")
    return "\n".join(lines)


def raters_markdown(rows: list[dict]) -> str:
    """One row per rater, then a line on what each column says; flags name failed checks and rushing."""
    titles = [title for _, title, _, _ in RATER_COLUMNS]
    lines = [
        "| rater | " + " | ".join(titles) + " | flags |",
        "|---|" + "---:|" * len(titles) + "---|",
    ]
    for row in rows:
        flags = [*row["flags"], *(["too fast to have read"] if row["speed"] == "fast" else [])]
        cells = [shown(row[key], kind) for key, _, kind, _ in RATER_COLUMNS]
        lines.append(f"| {cell(row['rater'])} | " + " | ".join(cells) + f" | {', '.join(flags)} |")
    lines.append("")
    lines += [f"- **{title}**: {says}" for _, title, _, says in RATER_COLUMNS]
    lines.append(
        "- **flags**: gold, consistency: failed that check (their votes count less in the majority); "
        "too fast to have read: half their judgments or more were too fast"
    )
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    """The whole quality report (from `report.quality_figures`) as Markdown: agreement, raters, aggregation."""
    agreement = report["agreement"]
    lines = [f"**{agreement['items']}** tasks, **{agreement['raters']}** raters."]
    if report.get("simulated_judgments"):
        lines.append(f"{report['simulated_judgments']} judgments are by simulated raters, not people.")
    lines += ["", "#### Agreement", "", agreement_markdown(agreement), "", "#### Raters", ""]
    lines.append(raters_markdown(report["raters"]))
    lines += [
        "",
        "#### One label per task",
        "",
        f"{report['aggregation']}: **{report['contested_items']}** of {report['items']} tasks contested "
        "(no clear majority: worth a reviewer's look).",
    ]
    model = report.get("reward_model")
    if model:
        lines.append(
            f"Reward model vs the raters' consensus: {shown(model['agreement'], 'share')} agree on "
            f"{model['items']} tasks, kappa {shown(model['kappa'], 'coef')}."
        )
    if report.get("prelabels"):
        lines += [
            "",
            "#### Pre-labels: the reward model against the raters",
            "",
            prelabels_markdown(report["prelabels"]),
        ]
    return "\n".join(lines)


def interval(row: dict) -> str:
    """A row's 95% interval as "41%–93%", or "-" when it has no items."""
    return "-" if row["ci_low"] is None else f"{row['ci_low']:.0%}–{row['ci_high']:.0%}"


def prelabels_markdown(section: dict) -> str:
    """The model's accuracy per confidence band and from each confidence up (to choose an auto-label threshold),
    then anchoring: how often raters shown the pre-label chose it, against raters not shown it."""
    bands = section["confidence"]
    lines = [
        f"The model's preferred answer against the raters' consensus (its own auto-labels do not vote) on "
        f"**{bands['items']}** tasks: **{shown(bands['accuracy'], 'share')}** agree (95% CI {interval(bands)}). "
        f"Counted apart, tasks whose consensus was a tie or both bad: {bands['ties']}; with no consensus: "
        f"{bands['undecided']}.",
    ]
    if section["auto_labels"]:
        lines[0] += f" The model's auto-labels, not counted as a rater's: {section['auto_labels']}."
    lines += ["", "| confidence | tasks | agree | accuracy | 95% CI |", "|---|---:|---:|---:|---|"]
    for band in bands["bands"]:
        lines.append(
            f"| {band['low']:.2f}–{band['high']:.2f} | {band['items']} | {band['agree']} | "
            f"{shown(band['accuracy'], 'share')} | {interval(band)} |"
        )
    lines += [
        "",
        "To pick an auto-label threshold: from each confidence up, the share of these tasks the model would "
        "label, and its accuracy on them.",
        "",
        "| from confidence | share of tasks | tasks | accuracy | 95% CI |",
        "|---|---:|---:|---:|---|",
    ]
    for row in bands["thresholds"]:
        lines.append(
            f"| ≥ {row['threshold']:.2f} | {shown(row['coverage'], 'share')} | {row['items']} | "
            f"{shown(row['accuracy'], 'share')} | {interval(row)} |"
        )
    lines += ["", anchoring_markdown(section["anchoring"])]
    return "\n".join(lines)


ANCHORING_GROUPS = (("seen", "shown the pre-label before voting"), ("unseen", "not shown it before voting"))


def anchoring_markdown(anchoring: dict) -> str:
    """Anchoring as a table of the two groups of judgments, or a sentence saying which group is missing."""
    lines = [
        "**Anchoring**: of the raters' decided judgments on pre-labelled tasks, the share that chose the model's "
        "answer. Clearly more among raters shown it suggests they follow the model instead of judging; compare "
        "groups that judged alike tasks (similar mean confidence)."
    ]
    if anchoring["seen"] is None and anchoring["unseen"] is None:
        return "\n".join([*lines, "", "No decided judgments of pre-labelled tasks yet."])
    lines += [
        "",
        "| raters | judgments | chose the model's answer | share | 95% CI | mean confidence |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for key, title in ANCHORING_GROUPS:
        group = anchoring[key]
        if group is None:
            lines.append(f"| {title} | 0 | - | - | - | - |")
            continue
        lines.append(
            f"| {title} | {group['judgments']} | {group['followed']} | {shown(group['share'], 'share')} | "
            f"{interval(group)} | {shown(group['mean_confidence'], 'coef')} |"
        )
    lines.append("")
    if anchoring["seen"] is None:
        lines.append("No rater was shown the pre-labels before voting: nothing to compare yet.")
    elif anchoring["unseen"] is None:
        lines.append(
            "Every rater was shown the pre-labels before voting: nothing to compare them with "
            "(show them after the vote to some raters to measure anchoring)."
        )
    else:
        lines.append(
            f"Difference: **{anchoring['difference'] * 100:+.0f}** percentage points "
            f"(two-proportion z-test p = {shown(anchoring['p_value'], 'p')})."
        )
    return "\n".join(lines)
