"""The config of `plumb loop run`: one YAML for the whole loop, with a section per stage in that stage's own keys.

Top-level keys say what a round is (prompts, candidates, raters, data, algorithm, gate,
judge). The sections `campaign`, `reward`, `dpo`, `online` and `eval` hold the keys of
the stage they configure (`plumb collect import`'s campaign YAML, `plumb reward train`,
`plumb align dpo`, `plumb align online`, `plumb align eval`): each round writes them, with
the round's data and models filled in, as that stage's own config file, so any stage of
any round can be rerun by hand with `plumb STAGE VERB --config RUN/round-N/STAGE/config.yaml`.
"""

from dataclasses import dataclass, field

ALGORITHMS = ("dpo", "ppo", "rloo", "grpo")
RATER_MODES = ("simulated", "people")
SERVE_MODES = ("app", "api", "none")
DATA_SCOPES = ("round", "all")


@dataclass
class LoopArguments:
    """What one round of the loop does, how many rounds, and where the run lives."""

    output_dir: str = field(
        default="outputs/loop",
        metadata={
            "help": "The run directory: one folder per round and stage, manifest.json, report.md. Rerunning on an "
            "existing run directory resumes it."
        },
    )
    rounds: int = field(default=2, metadata={"help": "How many rounds to run (a later rerun with more continues)."})
    sft_policy: str = field(
        default="default",
        metadata={
            "help": "The SFT checkpoint the loop starts from and evaluates against (any spec `load_policy` takes)."
        },
    )
    db: str | None = field(
        default=None,
        metadata={
            "help": "The preference store: a SQLite file or a PostgreSQL URL (default: collect.sqlite in output_dir)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of every stage of the run."})
    redo: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Stages to run again in every round although they are done, e.g. `--redo eval` after changing the "
            "judge or the eval section (the stages after them are not redone unless named)."
        },
    )

    # Prompts
    prompts: str = field(
        default="builtin:hh-harmless",
        metadata={
            "help": "Prompts for the rounds and the evaluation: prompts data (`prompt`) or conversations (`messages`)."
        },
    )
    prompts_split: str = field(default="prompts-train", metadata={"help": "Split the rounds draw their prompts from."})
    prompts_per_round: int = field(
        default=150,
        metadata={"help": "New prompts per round, taken in order, so no round sees another round's prompts."},
    )
    eval_split: str = field(default="prompts-test", metadata={"help": "Split of held-out evaluation prompts."})
    eval_prompts: int = field(default=100, metadata={"help": "How many held-out prompts the evaluation uses."})

    # Candidates
    samples_per_prompt: int = field(
        default=4,
        metadata={
            "help": "Candidates sampled from the current policy per prompt (K): a pairwise campaign compares every "
            "pair of them, a ranking campaign ranks all K."
        },
    )
    compare_with: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Other policies whose answer joins the candidates: `sft` and/or `previous` (the round before's)."
        },
    )
    generation: dict = field(
        default_factory=lambda: {"max_new_tokens": 64, "do_sample": True, "temperature": 1.0},
        metadata={"help": "Sampling settings of the candidates (transformers generate keys)."},
    )
    generation_batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call."})
    campaign: dict = field(
        default_factory=dict,
        metadata={
            "help": "Campaign settings (the keys of a campaign YAML: kind, raters_per_task, gold_share, strategy...)."
        },
    )

    # Judgments
    raters: str = field(
        default="simulated",
        metadata={
            "help": "Who judges: `simulated` raters (through the store's scheduler) or `people` (the loop serves "
            "the app and waits).",
            "choices": list(RATER_MODES),
        },
    )
    simulated_raters: int = field(default=3, metadata={"help": "How many simulated raters."})
    oracle: str = field(
        default="gold",
        metadata={
            "help": "What simulated raters follow: `gold` (the gold judge), a reward model directory, or `dataset`."
        },
    )
    simulated: dict = field(
        default_factory=dict,
        metadata={
            "help": "The simulated raters' noise model: temperature, position_bias, tie_margin, both_bad_below, "
            "strength_step, rater_spread."
        },
    )
    labels_per_round: int | None = field(
        default=None,
        metadata={
            "help": "Judgments per round: simulated raters stop there, people are waited for until there (default: "
            "every task judged by raters_per_task). With the `uncertainty` strategy they go where the model doubts."
        },
    )
    serve: str = field(
        default="app",
        metadata={
            "help": "People: serve the rating `app` (page and REST API), the `api` only, or `none` when a server "
            "already "
            "runs on the same database.",
            "choices": list(SERVE_MODES),
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "People: address the loop's server listens on."})
    port: int = field(default=7860, metadata={"help": "People: port of the loop's server."})
    poll_seconds: float = field(default=5.0, metadata={"help": "People: how often progress is checked."})

    # Data
    data: str = field(
        default="round",
        metadata={
            "help": "Train on this round's labels (`round`) or on every round's so far (`all`).",
            "choices": list(DATA_SCOPES),
        },
    )
    pairs_per_prompt: int = field(
        default=0, metadata={"help": "Keep at most this many pairs per prompt, those with the largest margin (0: all)."}
    )
    test_size: float = field(
        default=0.15,
        metadata={"help": "Share of the round's pairs held out (whole prompts) to evaluate the reward model."},
    )

    # Reward
    reward: dict = field(default_factory=dict, metadata={"help": "`plumb reward train` keys for every round."})
    reward_warm_start: bool = field(
        default=True,
        metadata={"help": "Start each round's reward model from the previous round's instead of the base backbone."},
    )
    min_accuracy: float | None = field(
        default=None,
        metadata={"help": "The reward gate: stop the loop when the reward model's held-out accuracy is below this."},
    )
    max_ece: float | None = field(
        default=None,
        metadata={"help": "The reward gate: stop the loop when the reward model's calibration error is above this."},
    )

    # Align
    algorithm: str = field(
        default="dpo",
        metadata={
            "help": "dpo (on the round's pairs), or online RL against the round's reward model: ppo, rloo or grpo.",
            "choices": list(ALGORITHMS),
        },
    )
    dpo: dict = field(default_factory=dict, metadata={"help": "`plumb align dpo` keys for every round."})
    online: dict = field(
        default_factory=dict,
        metadata={"help": "`plumb align online` keys for every round (those of the `algorithm`: ppo, rloo or grpo)."},
    )

    # Evaluation
    judge: str = field(
        default="gold",
        metadata={
            "help": "The judge of the evaluation, not used in training: `gold`, or reward model directories "
            "(comma-separated); `round` means the round's own reward model (with people)."
        },
    )
    gold_backbone: str = field(default="default", metadata={"help": "Backbone of the gold judge (tests: a tiny one)."})
    gold_pairs: str = field(default="builtin:hh-harmless", metadata={"help": "Human pairs the gold judge learns from."})
    gold_settings: dict = field(
        default_factory=dict,
        metadata={"help": "Overrides of the gold judge's training settings (loop.gold_judge.GOLD_SETTINGS)."},
    )
    eval: dict = field(
        default_factory=dict,
        metadata={
            "help": "Decoding of the evaluation: max_new_tokens, do_sample, temperature, top_p, batch_size, "
            "bootstrap_samples, length_tolerance."
        },
    )
    to_campaign: bool = field(
        default=False,
        metadata={
            "help": "Also write each round's policy-vs-SFT pairs for a human A/B campaign (`plumb collect import`)."
        },
    )

    def __post_init__(self):
        if self.rounds < 1 or self.prompts_per_round < 1 or self.samples_per_prompt < 1:
            raise ValueError("rounds, prompts_per_round and samples_per_prompt must be at least 1")
        from loop.manifest import STAGES

        if set(self.redo) - set(STAGES):
            raise ValueError(
                f"redo: unknown stage(s) {', '.join(sorted(set(self.redo) - set(STAGES)))} "
                f"(stages: {', '.join(STAGES)})"
            )
        unknown = set(self.compare_with) - {"sft", "previous"}
        if unknown:
            raise ValueError(f"compare_with: unknown {', '.join(sorted(unknown))} (use sft and/or previous)")
        if self.samples_per_prompt < 2:
            # Round 1 samples only the SFT policy, so its candidates are these samples alone.
            raise ValueError(f"samples_per_prompt must be at least 2 (got {self.samples_per_prompt})")
        if not 0 < self.test_size < 1:
            raise ValueError(f"test_size must be between 0 and 1, got {self.test_size}")


def config_types() -> tuple:
    """The dataclasses a `plumb loop run` config fills."""
    return (LoopArguments,)
