"""Annotation quality as plain functions on arrays: no database, no web app.

- `judgments`: rater judgments as column arrays (`JudgmentTable`), checked row by row.
- `agreement`: Cohen's and Fleiss' kappa, Krippendorff's alpha, raw agreement with and without ties.
- `raters`: per-rater reliability (gold, self-consistency, cycles, length and position bias, answers too fast to read).
- `aggregate`: majority vote, Dawid-Skene, contested items, agreement of a reward model with the raters.
- `report`: all of these for one set of judgments, and the report as text (`plumb collect quality`).
- `report_markdown`: the report as explained Markdown tables (the Campaign tab).
"""
