"""A campaign's judgments as a Hugging Face dataset that TRL trains on directly (`plumb collect export`).

Formats (the data contract's): `pairwise` (RewardTrainer, DPOTrainer), `ranking`, `kto`
(unpaired, KTOTrainer) and `sft` (the preferred answer, SFTTrainer); `judgments`, every
rater's pairwise answer as shown on screen, which `plumb collect quality` reads; and
`battles` (model_a, model_b, winner), which `plumb collect leaderboard --battles DIR` reads.
Several raters per task aggregate by majority (pairs) or mean rank (rankings, ratings);
the strength of a pairwise judgment becomes `margin`; `meta` keeps the task, the raters
and their agreement, and `meta.simulated` says when a simulated rater (`plumb collect simulate`)
judged the task. Nothing is dropped silently: summary.json counts every task left out, by reason,
and the judgments by rater kind (human, simulated).

A reviewer's adjudication (the newest one of a task) replaces the majority for that task,
also when raters judged it again afterwards (the review queue offers it again);
`meta.adjudicated` says which rows it decided. Rows per rater (`per_rater`) stay each
rater's own. In `sft`, a rater's edit (their improved version of the better response)
is the assistant turn instead of the best candidate: one row per distinct edit, with
`meta.edited` true; tasks without edits keep the best candidate. Pairwise rows never
use edits: nobody compared an edit with the candidates. Arena battles (`meta.source`
"arena") are exported like other tasks, except a battle voted on before both answers had
finished (the vote counts for the leaderboard only) and, unless `include_identity_leaks`, one
where an answer named its own model.

- `items`: a campaign's tasks with their prompts, candidates and live judgments (`load_items`).
- `majority`: the aggregation rules, pure functions on votes.
- `records`: every judgment as shown (`judgments`) and every battle (`battles`).
- `rows`: `ExportArguments` and the rows of each format, with what was left out.
- `dataset`: the rows saved as a dataset with summary.json and its card, and pushed to the Hub.
"""
