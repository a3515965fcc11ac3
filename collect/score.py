"""`plumb collect score`: a reward model (or an ensemble) scores a campaign's tasks, offline, between rounds.

Each task gets a priority from the model's doubt (the `uncertainty` strategy serves the most
doubtful first; `--clusters K` interleaves K clusters of prompts so the queue is not all one
kind), each pairwise task a pre-label (the answer the model prefers and its confidence,
shown to raters as the campaign's `prelabels` says), and, with `auto_label_above`, the tasks the
model is sure of are answered by a rater of kind `model`, except an audit share left to people.

    plumb collect score --campaign demo --model_name_or_path outputs/reward-demo --db campaign.sqlite
    plumb collect score --campaign demo --model_name_or_path rm-a,rm-b,rm-c --clusters 8 --auto_label_above 0.95
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from collect.services.prelabels import model_name, score_campaign
from collect.store import campaign_by_name, opened_store
from collect.store.models import StoreError


@dataclass
class ScoreCampaignArguments:
    """Which campaign, which reward model(s), and what to write: priorities, pre-labels, auto-labels."""

    campaign: str = field(default="demo", metadata={"help": "Name of the campaign to score."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Reward model directory, comma-separated for an ensemble (its spread is the doubt); default: the "
            "campaign's reward_model."
        },
    )
    clusters: int = field(
        default=0,
        metadata={"help": "Interleave this many clusters of prompts (k-means on the model's own view); 0: off."},
    )
    auto_label_above: float | None = field(
        default=None,
        metadata={"help": "Auto-label pairwise tasks at least this sure (default: the campaign's auto_label_above)."},
    )
    auto_label_audit_share: float | None = field(
        default=None, metadata={"help": "Share of sure tasks still sent to people (default: the campaign's)."}
    )
    batch_size: int = field(default=32, metadata={"help": "Batch size of the reward model's scoring."})
    seed: int = field(default=0, metadata={"help": "Seed of the clustering and of the audit draw."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Also write score.json (the summary) and the resolved config here."}
    )
    db: str | None = field(
        default=None,
        metadata={
            "help": "Database URL or SQLite file (default: $PLUMB_DB, else collect.sqlite in the Plumb data dir)."
        },
    )

    def __post_init__(self):
        if self.clusters < 0:
            raise ValueError(f"clusters must be 0 or more, got {self.clusters}")
        if self.auto_label_above is not None and not 0.5 <= self.auto_label_above <= 1:
            raise ValueError(f"auto_label_above must be a confidence in [0.5, 1], got {self.auto_label_above}")
        if self.auto_label_audit_share is not None and not 0 <= self.auto_label_audit_share <= 1:
            raise ValueError(f"auto_label_audit_share must be in [0, 1], got {self.auto_label_audit_share}")


def config_types() -> tuple:
    """The dataclasses a `plumb collect score` config fills."""
    return (ScoreCampaignArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, score, print the summary."""
    from plumb.config import parse_config

    args = parse_config(config_types(), argv, prog=prog)[0]
    summary = main(args)
    print(json.dumps(summary, indent=2))
    if args.output_dir:
        from plumb.config import save_resolved_config
        from plumb.paths import write_whole

        write_whole(Path(args.output_dir) / "score.json", json.dumps(summary, indent=2))
        save_resolved_config(Path(args.output_dir), args)
    return 0


def main(args: ScoreCampaignArguments) -> dict:
    """Score the campaign in `args.db` with the reward model(s); returns the summary."""
    from collect.services.campaign_cache import campaign_spec

    with opened_store(args.db) as sessions:
        with sessions() as session:
            spec = campaign_spec(campaign_by_name(session=session, name=args.campaign))
        spec_models = args.model_name_or_path or spec.reward_model
        if not spec_models:
            raise StoreError(
                f"campaign '{args.campaign}' names no reward_model: give --model_name_or_path DIR (or a,b,c)"
            )
        scorer, embedder = reward_model_scorer(spec_models, batch_size=args.batch_size)
        return score_campaign(
            sessions,
            args.campaign,
            scorer=scorer,
            embedder=embedder,
            model=model_name(spec_models),
            clusters=args.clusters,
            auto_label_above=args.auto_label_above if args.auto_label_above is not None else spec.auto_label_above,
            audit_share=args.auto_label_audit_share
            if args.auto_label_audit_share is not None
            else spec.auto_label_audit_share,
            seed=args.seed,
        )


def reward_model_scorer(spec: str, *, batch_size: int):
    """(scorer: every model's reward of each conversation, embedder: the first model's pooled view of each prompt)."""
    # Lazily: collect may import reward only to score, and `import collect` stays free of torch.
    from reward.score import (
        embed_conversations,
        load_reward_model,
        member_scores,
        model_paths,
        trained_max_length,
    )

    paths = model_paths(spec)
    models = [load_reward_model(path) for path in paths]
    max_length = trained_max_length(paths[0])

    def scorer(conversations):
        return member_scores(models, conversations, max_length=max_length, batch_size=batch_size)

    def embedder(prompts):
        return embed_conversations(models[0], prompts, max_length=max_length, batch_size=batch_size)

    return scorer, embedder
