"""`plumb collect leaderboard`: Bradley-Terry ratings (Elo scale) of policies from pairwise battles.

Reads battles from a JSONL/Parquet/CSV file with columns model_a, model_b, winner
(model_a | model_b | tie | both_bad), prints the table, and writes leaderboard.json,
ratings.png (ratings with bootstrap intervals), win_rates.png and the resolved config.

    plumb collect leaderboard --config configs/collect/leaderboard-demo.yaml
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from collect.services.arena.plots import plot_ratings, plot_win_rates
from collect.services.arena.ratings import count_battles, leaderboard, leaderboard_json, leaderboard_table
from plumb.config import parse_config, save_resolved_config
from plumb.data import DataError, load_records

logger = logging.getLogger(__name__)

COLUMNS = ("model_a", "model_b", "winner")


@dataclass
class LeaderboardArguments:
    """Where the battles are, how to count them, and the Elo scale."""

    battles: str = field(
        default="builtin:demo-battles",
        metadata={
            "help": "Battles (columns model_a, model_b, winner): builtin:NAME, a JSONL/Parquet/CSV file or a "
            "saved dataset directory."
        },
    )
    split: str = field(default="train", metadata={"help": "Split to read when `battles` has several."})
    output_dir: str = field(default="outputs/leaderboard", metadata={"help": "Where the JSON, plots and config go."})
    both_bad: Literal["tie", "drop"] = field(
        default="tie", metadata={"help": "A 'both bad' verdict counts as a tie (half a win each) or is dropped."}
    )
    scale: float = field(default=400.0, metadata={"help": "Elo points for a factor of `base` in the odds of winning."})
    base: float = field(default=10.0, metadata={"help": "Base of the Elo odds."})
    anchor: float = field(default=1000.0, metadata={"help": "Mean rating of the policies."})
    l2: float = field(
        default=0.0,
        metadata={"help": "Ridge penalty on the strengths; > 0 gives finite ratings when a policy never lost."},
    )
    bootstrap_rounds: int = field(
        default=100, metadata={"help": "Resamplings of the battles for the intervals (0: none)."}
    )
    confidence: float = field(default=0.95, metadata={"help": "Coverage of the bootstrap intervals."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap resampling."})


def config_types() -> tuple:
    """The dataclasses a `plumb collect leaderboard` config fills."""
    return (LeaderboardArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then compute the leaderboard."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: LeaderboardArguments) -> dict:
    """Fit, print and save the leaderboard; returns what leaderboard.json holds."""
    # Battles
    records = load_records(args.battles, args.split)
    missing = [c for c in COLUMNS if c not in records.column_names]
    if missing:
        raise DataError(f"{args.battles}: missing column(s) {', '.join(missing)} (has {records.column_names})")
    counts = count_battles(*(list(records[c]) for c in COLUMNS), both_bad=args.both_bad, source=args.battles)

    # Ratings
    board = leaderboard(
        counts,
        scale=args.scale,
        base=args.base,
        anchor=args.anchor,
        l2=args.l2,
        rounds=args.bootstrap_rounds,
        confidence=args.confidence,
        seed=args.seed,
    )
    print(leaderboard_table(board))

    # Save
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = leaderboard_json(board)
    (output_dir / "leaderboard.json").write_text(json.dumps(result, indent=2))
    plot_ratings(board, output_dir / "ratings.png")
    plot_win_rates(board, output_dir / "win_rates.png")
    save_resolved_config(output_dir, args)
    logger.info("Leaderboard of %d policies written to %s", len(board.policies), output_dir.resolve())
    return result
