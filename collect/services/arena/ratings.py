"""Bradley-Terry ratings of policies on the Elo scale from pairwise battles, with bootstrap intervals.

A battle is (model_a, model_b, winner) with winner one of model_a, model_b, tie, both_bad
(the layout public arena data uses; "tie (bothbad)" is read as both_bad). Battles are
first counted into one cell per (a, b, outcome); the fit and every bootstrap round work
on those counts, so a million battles cost no more than the few hundred distinct cells.

Ratings: P(a beats b) = 1 / (1 + base ** ((R_b - R_a) / scale)), ties half a win each,
mean rating `anchor`. The fit is Newton's method on the log-likelihood of the counts.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from collect.domain.answers import BOTH_BAD
from plumb.data import DataError

# outcome code -> share of the battle won by (a, b)
A_WINS, B_WINS, TIE = 0, 1, 2
OUTCOME_SHARES = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
BOTH_BAD_WINNERS = (BOTH_BAD, "tie (bothbad)")  # Plumb's, and public arena data's
WINNERS = {"model_a": A_WINS, "model_b": B_WINS, "tie": TIE, **dict.fromkeys(BOTH_BAD_WINNERS, TIE)}


@dataclass(frozen=True)
class BattleCounts:
    """Battles counted per distinct (a, b, outcome) cell."""

    policies: np.ndarray  # (n,) str, sorted
    cells: np.ndarray  # (c, 3) int: a, b (indices into policies), outcome code
    counts: np.ndarray  # (c,) int: battles in each cell
    dropped: int  # "both bad" battles left out (when asked to)

    @property
    def battles(self) -> int:
        """Battles counted (dropped ones excluded)."""
        return int(self.counts.sum())


def count_battles(model_a, model_b, winner, *, both_bad: str = "tie", source: str = "battles") -> BattleCounts:
    """Count battles (three sequences of n strings) into cells; `both_bad` is "tie" (half a win each) or "drop".

    A bad row raises `DataError` naming `source`, the row and the field.
    """
    if both_bad not in ("tie", "drop"):
        raise ValueError(f"both_bad must be 'tie' or 'drop', got {both_bad!r}")
    model_a, model_b, winner = (
        list(column.tolist() if isinstance(column, np.ndarray) else column) for column in (model_a, model_b, winner)
    )
    n = len(winner)
    names, name_codes = factorize(model_a + model_b)
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name:
            row = int(np.argmax(name_codes == k))
            raise DataError(
                f"{source}: row {row % n}: field '{'model_b' if row >= n else 'model_a'}': "
                f"expected a non-empty name, got {name!r}"
            )
    a, b = name_codes[:n], name_codes[n:]
    if (a == b).any():
        row = int(np.argmax(a == b))
        raise DataError(f"{source}: row {row}: fields 'model_a' and 'model_b' name the same policy {model_a[row]!r}")
    verdicts, verdict_codes = factorize(winner)
    for k, verdict in enumerate(verdicts):
        if verdict not in WINNERS:
            row = int(np.argmax(verdict_codes == k))
            raise DataError(f"{source}: row {row}: field 'winner': {verdict!r} is not one of {', '.join(WINNERS)}")
    outcome = np.array([WINNERS[v] for v in verdicts])[verdict_codes]
    keep = np.ones(n, dtype=bool)
    if both_bad == "drop":
        keep = ~np.isin(verdict_codes, [k for k, v in enumerate(verdicts) if v in BOTH_BAD_WINNERS])
    if not keep.any():
        raise DataError(f"{source}: no battles to rate ({n} rows, {n - int(keep.sum())} 'both bad' dropped)")
    # Sorted names, and only those still in a battle once "both bad" ones are dropped
    used = np.bincount(np.concatenate([a[keep], b[keep]]), minlength=len(names)) > 0
    policies = np.sort(np.array(names, dtype=object)[used]).astype(str)
    rank = np.full(len(names), -1)
    rank[used] = np.searchsorted(policies, np.array(names, dtype=object)[used].astype(str))
    count = len(policies)
    cell_id = (rank[a[keep]] * count + rank[b[keep]]) * 3 + outcome[keep]
    counts = np.bincount(cell_id, minlength=count * count * 3)
    present = np.flatnonzero(counts)
    cells = np.stack([present // 3 // count, present // 3 % count, present % 3], axis=1)
    return BattleCounts(policies=policies, cells=cells, counts=counts[present], dropped=int(n - keep.sum()))


def factorize(values: list) -> tuple[list, np.ndarray]:
    """(distinct values in first-seen order, codes (n,) int: each value's index into them).

    One hash lookup per value: several times faster than sorting a million strings.
    """
    index = {}
    codes = np.fromiter((index.setdefault(value, len(index)) for value in values), dtype=np.intp, count=len(values))
    return list(index), codes


def win_matrix(cells: np.ndarray, counts: np.ndarray, policies: int) -> np.ndarray:
    """(..., n, n) wins[i, j]: battles i won against j (a tie is half to each), from cell `counts` (..., c)."""
    a, b, outcome = cells.T
    shares = OUTCOME_SHARES[outcome]  # (c, 2)
    rows = np.concatenate([a * policies + b, b * policies + a])
    scatter = sparse.csr_matrix(
        (np.concatenate(shares.T), (rows, np.tile(np.arange(len(cells)), 2))), shape=(policies * policies, len(cells))
    )
    flat = (scatter @ np.atleast_2d(counts).T.astype(float)).T  # sums the duplicate (i, j) entries
    return flat.reshape(*np.shape(counts)[:-1], policies, policies)


def bradley_terry(
    wins: np.ndarray, *, l2: float = 0.0, max_iter: int = 100, tol: float = 1e-10, max_step: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """(strengths (..., n) in natural log-odds with mean 0, converged (...,) bool): the maximum likelihood
    Bradley-Terry fit of `wins` (..., n, n).

    Newton steps on the concave log-likelihood minus `l2`/2 |theta|^2, several fits batched at once.
    The Hessian is a graph Laplacian whose null space (a shift of every strength) is closed by
    adding the all-ones matrix / n; steps are capped at `max_step` so a fit with no finite
    maximum (a policy that never lost) drifts slowly and reports not converged instead of overflowing.
    """
    wins = np.asarray(wins, dtype=float)
    n = wins.shape[-1]
    games = wins + np.swapaxes(wins, -1, -2)
    theta = np.zeros(wins.shape[:-1])
    step = np.full_like(theta, np.inf)
    pin = np.ones((n, n)) / n + l2 * np.eye(n)
    for _ in range(max_iter):
        diff = theta[..., :, None] - theta[..., None, :]
        grad = (wins - games * expit(diff)).sum(axis=-1) - l2 * theta
        info = games * expit(diff) * expit(-diff)  # Fisher information of each pair, no underflow to 0
        laplacian = np.eye(n) * info.sum(axis=-1)[..., None, :] - info
        step = np.clip(np.linalg.solve(laplacian + pin, grad[..., None])[..., 0], -max_step, max_step)
        theta = theta + step
        theta -= theta.mean(axis=-1, keepdims=True)
        if np.abs(step).max() < tol:
            break
    return theta, np.abs(step).max(axis=-1) < max(tol, 1e-6)


def to_elo(strengths: np.ndarray, *, scale: float = 400.0, base: float = 10.0, anchor: float = 1000.0) -> np.ndarray:
    """Natural log-odds strengths (mean 0) as Elo-scale ratings with mean `anchor`."""
    return anchor + strengths * scale / np.log(base)


def check_connected(counts: BattleCounts) -> None:
    """Raise `DataError` when the policies fall into groups that never met: their ratings are not comparable."""
    games = win_matrix(counts.cells, counts.counts, len(counts.policies))
    groups, label = connected_components(sparse.csr_matrix(games > 0), directed=False)
    if groups > 1:
        parts = "; ".join(", ".join(counts.policies[label == g]) for g in range(groups))
        raise DataError(f"battles: the policies form {groups} groups that never battled each other ({parts})")


def bootstrap_counts(counts: BattleCounts, *, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(rounds, c) cell counts of `rounds` resamplings of the battles with replacement (multinomial draws)."""
    return rng.multinomial(counts.battles, counts.counts / counts.battles, size=rounds)


@dataclass(frozen=True)
class Leaderboard:
    """Ratings and matrices of one leaderboard, policies sorted best first."""

    policies: list[str]
    ratings: np.ndarray  # (n,) Elo scale
    ci_low: np.ndarray  # (n,) bootstrap interval, NaN without bootstrap
    ci_high: np.ndarray  # (n,)
    wins: np.ndarray  # (n, n) wins[i, j]: battles i won against j, ties half
    battles: int
    dropped: int
    rounds: int  # bootstrap rounds used (rounds with no finite fit are left out)
    confidence: float

    @property
    def games(self) -> np.ndarray:
        """(n, n) battle-count matrix: battles between i and j."""
        return self.wins + self.wins.T

    @property
    def win_rates(self) -> np.ndarray:
        """(n, n) share of its battles against j that i won (ties half); NaN where they never met."""
        games = self.games
        return np.divide(self.wins, games, out=np.full_like(games, np.nan), where=games > 0)


def leaderboard(
    counts: BattleCounts,
    *,
    scale: float = 400.0,
    base: float = 10.0,
    anchor: float = 1000.0,
    l2: float = 0.0,
    rounds: int = 100,
    confidence: float = 0.95,
    seed: int = 0,
) -> Leaderboard:
    """Fit the ratings of `counts`, bootstrap `rounds` resamplings for intervals, and sort best first."""
    check_connected(counts)
    n = len(counts.policies)
    strengths, converged = bradley_terry(win_matrix(counts.cells, counts.counts, n), l2=l2)
    if not converged:
        raise DataError(
            "battles: the ratings have no finite maximum: some policies won (or lost) every battle "
            "against the rest; collect more battles or set l2 > 0 (e.g. 0.01)"
        )
    elo = dict(scale=scale, base=base, anchor=anchor)
    ratings = to_elo(strengths, **elo)
    low = high = np.full(n, np.nan)
    used = 0
    if rounds:
        resampled = bootstrap_counts(counts, rounds=rounds, rng=np.random.default_rng(seed))
        boot, ok = bradley_terry(win_matrix(counts.cells, resampled, n), l2=l2)
        used = int(ok.sum())
        if used:
            tail = (1 - confidence) / 2 * 100
            low, high = np.percentile(to_elo(boot[ok], **elo), [tail, 100 - tail], axis=0)
    order = np.argsort(-ratings, kind="stable")
    wins = win_matrix(counts.cells, counts.counts, n)[np.ix_(order, order)]
    return Leaderboard(
        policies=[str(p) for p in counts.policies[order]],
        ratings=ratings[order],
        ci_low=low[order],
        ci_high=high[order],
        wins=wins,
        battles=counts.battles,
        dropped=counts.dropped,
        rounds=used,
        confidence=confidence,
    )


def _number(value: float, digits: int = 1):
    return None if np.isnan(value) else round(float(value), digits)


def leaderboard_table(board: Leaderboard) -> str:
    """A plain-text table: rank, policy, rating, interval, battles and overall win rate."""
    width = max(len("policy"), *(len(p) for p in board.policies))
    interval = f"{board.confidence:.0%} interval"
    lines = [f"{'rank':>4}  {'policy':<{width}}  {'rating':>7}  {interval:>17}  {'battles':>8}  {'win rate':>8}"]
    games = board.games.sum(axis=1)
    for i, policy in enumerate(board.policies):
        shown = "" if np.isnan(board.ci_low[i]) else f"{board.ci_low[i]:7.1f} .. {board.ci_high[i]:7.1f}"
        lines.append(
            f"{i + 1:>4}  {policy:<{width}}  {board.ratings[i]:7.1f}  {shown:>17}  "
            f"{int(games[i]):>8}  {board.wins[i].sum() / games[i]:8.1%}"
        )
    lines.append(f"{board.battles} battles ({board.dropped} 'both bad' dropped), {board.rounds} bootstrap rounds")
    return "\n".join(lines)


def leaderboard_json(board: Leaderboard) -> dict:
    """The leaderboard as plain JSON types: ratings with intervals, win-rate and battle-count matrices."""
    games, rates = board.games, board.win_rates
    return {
        "battles": board.battles,
        "dropped": board.dropped,
        "bootstrap_rounds": board.rounds,
        "confidence": board.confidence,
        "ratings": [
            {
                "rank": i + 1,
                "policy": p,
                "rating": _number(board.ratings[i]),
                "ci_low": _number(board.ci_low[i]),
                "ci_high": _number(board.ci_high[i]),
                "battles": int(games[i].sum()),
            }
            for i, p in enumerate(board.policies)
        ],
        "win_rate": {
            a: {b: _number(rates[i, j], 4) for j, b in enumerate(board.policies) if games[i, j]}
            for i, a in enumerate(board.policies)
        },
        "battle_count": {
            a: {b: int(games[i, j]) for j, b in enumerate(board.policies) if games[i, j]}
            for i, a in enumerate(board.policies)
        },
    }
