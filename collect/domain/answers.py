"""What a rater can answer, and what an answer says: the one place for the answer scales and their labels.

A stored pairwise answer is canonical: `preference` -3..3 (positive: the task's first
candidate is better; 0 a tie) and `both_bad`. Raters, API clients and reviewers name an
answer by its choice label instead ("A slightly better", "Both bad"): `answer_of` turns a
label into the answer and `choice_of` an answer back into its label. Wherever "both bad" is
data (a vote, an exported judgment's `choice`, a battle's `winner`) its value is `BOTH_BAD`.
`verdict` is what a judgment says, comparable across raters, and `raters_disagree` is the
rule that grows a task's overlap and fills the review queue.
"""

# The scale practitioners use (Anthropic HH, Llama 2): display-A's preference, strongest first.
PAIRWISE_SCALE = (
    ("A much better", 3),
    ("A better", 2),
    ("A slightly better", 1),
    ("Tie", 0),
    ("B slightly better", -1),
    ("B better", -2),
    ("B much better", -3),
)
BOTH_BAD = "both_bad"  # a "both bad" answer as data: votes, exported judgments, battles
BOTH_BAD_CHOICE = "Both bad"  # its label: on the rater's button, in the API's `choice`, on the review page
# Chatbot Arena's four answers: a 7-point scale asks too much of a rater's own quick prompt.
# Display order is canonical order in a battle (A is the task's first candidate), so these are stored as they are.
ARENA_VOTES = {
    "A is better": {"preference": 2},
    "B is better": {"preference": -2},
    "Tie": {"preference": 0},
    BOTH_BAD_CHOICE: {"both_bad": True},
}
IDENTITY_LEAK = "identity leak"  # the flag of an arena vote where an answer named its own model


def choices(*, allow_both_bad: bool = True) -> list[str]:
    """The pairwise choice labels, strongest A first, then "Both bad" (when the campaign offers it)."""
    return [label for label, _ in PAIRWISE_SCALE] + ([BOTH_BAD_CHOICE] if allow_both_bad else [])


def scale_options(*, allow_both_bad: bool = True) -> list[dict]:
    """The pairwise answer options shown to raters, each with its preference value (or `both_bad`)."""
    options = [{"label": label, "preference": value} for label, value in PAIRWISE_SCALE]
    return options + ([{"label": BOTH_BAD_CHOICE, "both_bad": True}] if allow_both_bad else [])


def answer_of(choice: str) -> dict:
    """The answer a choice label stands for: {"preference": -3..3 or None, "both_bad": bool}.

    `ValueError` naming the labels for any other text.
    """
    if choice == BOTH_BAD_CHOICE:
        return {"preference": None, "both_bad": True}
    scale = dict(PAIRWISE_SCALE)
    if choice not in scale:
        raise ValueError(f"unknown choice {choice!r} (choose one of: {', '.join(choices())})")
    return {"preference": scale[choice], "both_bad": False}


def choice_of(preference: int | None, both_bad: bool) -> str:
    """The choice label of a pairwise answer: "Both bad", or the scale's label of `preference`."""
    if both_bad:
        return BOTH_BAD_CHOICE
    return {value: label for label, value in PAIRWISE_SCALE}[preference]


def pairwise_verdict(preference: int | None, both_bad: bool):
    """A pairwise vote: +1 (first candidate better), -1 (second), 0 (tie) or `BOTH_BAD`."""
    if both_bad:
        return BOTH_BAD
    return (preference > 0) - (preference < 0)


def verdict(judgment):
    """What a judgment (or adjudication) says, comparable across raters: `pairwise_verdict`, or the ranks/ratings."""
    if judgment.both_bad:
        return BOTH_BAD
    if judgment.preference is not None:
        return pairwise_verdict(judgment.preference, False)
    return tuple(judgment.ranks or judgment.ratings or ())


def raters_disagree(judgments) -> bool:
    """Whether these live judgments of one task say different things (by `verdict`)."""
    return len({verdict(j) for j in judgments}) > 1
