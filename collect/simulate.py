"""`plumb collect simulate`: simulated raters judge a campaign through the same scheduler as people.

Each simulated rater (sim-1..sim-N) follows an oracle, a reward model directory or
`dataset` (each candidate's imported `oracle_score`), with a noise model of its own; see
`collect.services.simulation` and `collect.domain.simulated_raters`.

    plumb collect simulate --campaign demo --raters 3 --oracle outputs/reward-demo --db campaign.sqlite
    plumb collect simulate --campaign demo --oracle dataset --temperature 0.5 --position_bias 0.1
"""

import json
from dataclasses import dataclass, field

from collect.domain.simulated_raters import SimulatedRaterParams
from collect.services.simulation import DATASET_ORACLE, simulate
from collect.store import opened_store


@dataclass
class SimulateArguments:
    """Which campaign, how many simulated raters, their oracle and their noise model."""

    campaign: str = field(default="demo", metadata={"help": "Name of the campaign to judge."})
    raters: int = field(default=3, metadata={"help": "Number of simulated raters: sim-1..sim-N, reused if they exist."})
    oracle: str = field(
        default=DATASET_ORACLE,
        metadata={
            "help": "A reward model directory (comma-separated: an ensemble's mean), or 'dataset': each candidate's "
            "imported oracle_score."
        },
    )
    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Bradley-Terry temperature: P(agree with the oracle) = sigmoid(|score gap| / temperature); "
            "0: always."
        },
    )
    position_bias: float = field(
        default=0.0,
        metadata={"help": "Probability of just picking the answer shown first (rankings: keeping the shown order)."},
    )
    tie_margin: float = field(default=0.0, metadata={"help": "Oracle score gaps below this are answered 'tie'."})
    both_bad_below: float | None = field(
        default=None, metadata={"help": "When both oracle scores are below this, answer 'both bad' (unset: never)."}
    )
    strength_step: float = field(
        default=1.0, metadata={"help": "Preference strength 1..3 is ceil(|score gap| / strength_step)."}
    )
    rater_spread: float = field(
        default=0.0,
        metadata={"help": "Per-rater variation: std of each rater's log-temperature and logit position bias."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the raters' draws and of the order they are shown."})
    max_judgments: int | None = field(default=None, metadata={"help": "Stop after this many judgments."})
    batch_size: int = field(default=32, metadata={"help": "Batch size of the reward model oracle's scoring."})
    db: str | None = field(
        default=None,
        metadata={
            "help": "Database URL or SQLite file (default: $PLUMB_DB, else collect.sqlite in the Plumb data dir)."
        },
    )

    def __post_init__(self):
        self.params()  # a bad value is refused when the config is read, naming the key
        for name in ("raters", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def params(self) -> SimulatedRaterParams:
        """The noise model these arguments describe."""
        return SimulatedRaterParams(
            temperature=self.temperature,
            position_bias=self.position_bias,
            tie_margin=self.tie_margin,
            both_bad_below=self.both_bad_below,
            strength_step=self.strength_step,
            rater_spread=self.rater_spread,
        )


def config_types() -> tuple:
    """The dataclasses a `plumb collect simulate` config fills."""
    return (SimulateArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then simulate and print the summary."""
    from plumb.config import parse_config

    summary = main(*parse_config(config_types(), argv, prog=prog))
    print(json.dumps(summary, indent=2))
    return 0


def main(args: SimulateArguments) -> dict:
    """Run the simulated raters on the campaign in `args.db`; returns the summary."""
    with opened_store(args.db) as sessions:
        return simulate(
            sessions,
            args.campaign,
            raters=args.raters,
            oracle=args.oracle,
            params=args.params(),
            seed=args.seed,
            max_judgments=args.max_judgments,
            batch_size=args.batch_size,
        )
