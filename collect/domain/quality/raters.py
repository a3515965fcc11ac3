"""Per-rater reliability from a `JudgmentTable`: who can be trusted, and who is guessing, rushing or biased.

Every statistic returns arrays aligned with `np.unique(table.rater)` (R raters):
a count of hits and a count of chances, so callers can show both and the share.
"""

import numpy as np
from scipy import sparse
from scipy.stats import binomtest

from collect.domain.quality.judgments import (
    JudgmentTable,
    first_judgments,
    join_keys,
    label_matrix,
    preference,
    winning_candidate,
)


def rater_codes(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """(raters (R,), code (n,)): the sorted rater ids and each judgment's index into them."""
    return np.unique(table.rater, return_inverse=True)


def _per_rater(code: np.ndarray, mask: np.ndarray, raters: int) -> np.ndarray:
    return np.bincount(code[mask], minlength=raters)


def gold_accuracy(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """(correct, gold) (R,): gold judgments that chose the known answer, and gold judgments."""
    raters, code = rater_codes(table)
    gold = table.gold != ""
    correct = gold & (winning_candidate(table) == table.gold)
    return _per_rater(code, correct, len(raters)), _per_rater(code, gold, len(raters))


def self_consistency(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """(consistent, repeats) (R,): repeats of an item whose preference matches the rater's first judgment of it."""
    raters, code = rater_codes(table)
    _, first, group = np.unique(join_keys(table.rater, table.item), return_index=True, return_inverse=True)
    signed = preference(table)
    repeat = ~first_judgments(table)
    consistent = repeat & (signed == signed[first[group]])
    return _per_rater(code, consistent, len(raters)), _per_rater(code, repeat, len(raters))


def intransitivity(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """(cycles, triads) (R,): a rater's triads of candidates judged pairwise (no ties) and those forming A>B>C>A.

    With W the rater's 0/1 "beat" matrix and S = W + W^T, the directed 3-cycles number
    trace(W^3)/3 and the fully compared triads trace(S^3)/6.
    """
    raters, code = rater_codes(table)
    candidates, index = np.unique(np.concatenate([table.left, table.right]), return_inverse=True)
    left, right = index[: len(table)], index[len(table) :]
    ordered = table.left < table.right
    low, high = np.where(ordered, table.left, table.right), np.where(ordered, table.right, table.left)
    pair = join_keys(table.rater, low, high)
    _, first = np.unique(pair, return_index=True)  # one verdict per rater and pair, the first
    strict = np.zeros(len(table), dtype=bool)
    strict[first] = True
    strict &= table.winner != 0
    winner = np.where(table.winner < 0, left, right)
    loser = np.where(table.winner < 0, right, left)
    cycles, triads = np.zeros(len(raters), dtype=int), np.zeros(len(raters), dtype=int)
    shape = (len(candidates), len(candidates))
    for r in range(len(raters)):
        mine = strict & (code == r)
        beat = sparse.csr_matrix((np.ones(mine.sum()), (winner[mine], loser[mine])), shape=shape)
        both = beat + beat.T
        cycles[r] = round((beat @ beat).multiply(beat.T).sum() / 3)
        triads[r] = round((both @ both).multiply(both).sum() / 6)
    return cycles, triads


def length_bias(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """(longer_won, judged) (R,): strict judgments of candidates of known, unequal length, and those the longer won."""
    raters, code = rater_codes(table)
    longer_right = table.right_length > table.left_length
    judged = (table.winner != 0) & (table.left_length != table.right_length)
    judged &= ~np.isnan(table.left_length) & ~np.isnan(table.right_length)
    longer_won = judged & ((table.winner > 0) == longer_right)
    return _per_rater(code, longer_won, len(raters)), _per_rater(code, judged, len(raters))


def consensus_agreement(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """(agreed, judged) (R,): items where the other raters have a strict majority, and those where the rater
    sided with it."""
    labels, _, raters = label_matrix(table, preference(table))  # labels in {-1, 0, 1}
    votes = np.stack([labels == c for c in (-1, 0, 1)], axis=2).astype(int)  # (items, R, 3)
    others = votes.sum(axis=1, keepdims=True) - votes  # each rater's view of everyone else
    top = others.max(axis=2, keepdims=True)
    decided = (top[..., 0] > 0) & ((others == top).sum(axis=2) == 1) & ~np.isnan(labels)
    agreed = decided & (others.argmax(axis=2) - 1 == labels)
    return agreed.sum(axis=0), decided.sum(axis=0)


def position_bias(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left_won, strict, p_value) (R,): strict judgments, those won by the left side, and the two-sided
    binomial-test p-value against the 50% that randomized sides imply (NaN without strict judgments)."""
    raters, code = rater_codes(table)
    strict = table.winner != 0
    left_won = _per_rater(code, table.winner < 0, len(raters))
    total = _per_rater(code, strict, len(raters))
    p_value = np.array([binomtest(int(k), int(n), 0.5).pvalue if n else np.nan for k, n in zip(left_won, total)])
    return left_won, total, p_value


def median_seconds(table: JudgmentTable) -> np.ndarray:
    """(R,) each rater's median seconds per judgment (NaN when none was timed)."""
    raters, code = rater_codes(table)
    timed = ~np.isnan(table.seconds)
    return np.array(
        [
            np.median(table.seconds[timed & (code == r)]) if (timed & (code == r)).any() else np.nan
            for r in range(len(raters))
        ]
    )


# Adults read English prose at about 240 words a minute (Brysbaert 2019), some 20-25 characters
# a second, and skim at about twice that. A judgment quicker than skimming both answers at 50
# characters a second cannot have read them; the generous rate keeps careful fast readers unflagged.
READING_CHARS_PER_SECOND = 50.0
# However short the answers, seeing them, deciding and clicking takes at least this long.
MIN_SECONDS = 1.0
# A rater is flagged "fast" when at least this share of their timed judgments was too fast to read.
RUSHED_SHARE = 0.5


def reading_seconds(table: JudgmentTable, *, chars_per_second: float = READING_CHARS_PER_SECOND) -> np.ndarray:
    """(n,) the fewest seconds each judgment could take if its two answers were read: their characters
    / `chars_per_second`, and never under MIN_SECONDS (the floor alone when lengths are unknown)."""
    characters = np.nan_to_num(table.left_length) + np.nan_to_num(table.right_length)
    return np.maximum(characters / chars_per_second, MIN_SECONDS)


def too_fast(table: JudgmentTable, *, chars_per_second: float = READING_CHARS_PER_SECOND) -> tuple:
    """(rushed, timed) (R,): timed judgments quicker than `reading_seconds`, and timed judgments."""
    raters, code = rater_codes(table)
    timed = ~np.isnan(table.seconds)
    rushed = timed & (table.seconds < reading_seconds(table, chars_per_second=chars_per_second))
    return _per_rater(code, rushed, len(raters)), _per_rater(code, timed, len(raters))


def share(hits, chances) -> float | None:
    """hits / chances as a float, or None when there were no chances."""
    return float(hits) / float(chances) if chances else None


def rater_report(
    table: JudgmentTable,
    *,
    min_gold: int = 5,
    gold_threshold: float = 0.7,
    min_repeats: int = 3,
    consistency_threshold: float = 0.7,
    rushed_share: float = RUSHED_SHARE,
) -> list[dict]:
    """One row per rater with every reliability figure and `flags` ("gold", "consistency") for failed checks;
    `speed` is "fast" when at least `rushed_share` of their timed judgments were too fast to read."""
    raters, code = rater_codes(table)
    gold = gold_accuracy(table)
    repeats = self_consistency(table)
    cycles, triads = intransitivity(table)
    longer = length_bias(table)
    consensus = consensus_agreement(table)
    left_won, strict, p_value = position_bias(table)
    ties = _per_rater(code, table.winner == 0, len(raters))
    counts = np.bincount(code, minlength=len(raters))
    medians = median_seconds(table)
    rushed, timed = too_fast(table)
    rows = []
    for r, rater in enumerate(raters):
        row = {
            "rater": str(rater),
            "judgments": int(counts[r]),
            "gold_accuracy": share(gold[0][r], gold[1][r]),
            "gold_items": int(gold[1][r]),
            "self_consistency": share(repeats[0][r], repeats[1][r]),
            "repeats": int(repeats[1][r]),
            "intransitivity": share(cycles[r], triads[r]),
            "triads": int(triads[r]),
            "length_bias": share(longer[0][r], longer[1][r]),
            "consensus_agreement": share(consensus[0][r], consensus[1][r]),
            "left_win_rate": share(left_won[r], strict[r]),
            "position_p_value": None if np.isnan(p_value[r]) else float(p_value[r]),
            "tie_rate": share(ties[r], counts[r]),
            "median_seconds": None if np.isnan(medians[r]) else float(medians[r]),
            "too_fast": share(rushed[r], timed[r]),
            "speed": "fast" if timed[r] and rushed[r] >= rushed_share * timed[r] else "",
        }
        failed_gold = row["gold_items"] >= min_gold and row["gold_accuracy"] < gold_threshold
        failed_repeats = row["repeats"] >= min_repeats and row["self_consistency"] < consistency_threshold
        row["flags"] = [name for name, failed in (("gold", failed_gold), ("consistency", failed_repeats)) if failed]
        rows.append(row)
    return rows
