"""A campaign definition: one YAML file that says what raters judge and how.

Campaign YAMLs live in `configs/collect/campaigns/`; they are read by `plumb collect
import --campaign FILE`, not parsed as run configs. Unknown keys and ill-typed values
are errors that name the file and the key, like every Plumb config.
"""

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from collect.domain.answers import scale_options
from collect.domain.hygiene import settings_from_dict
from plumb.config import ConfigError, read_yaml

KINDS = ("pairwise", "ranking", "rating")
STRATEGY_NAMES = ("fewest-judgments-first", "random", "priority", "uncertainty")
PRELABEL_DISPLAYS = ("hidden", "shown", "after_vote")
DEFAULT_FLAGS = ("unsafe", "factually wrong", "broken")
ARENA_PAIRINGS = ("uniform", "informative")  # how the arena picks two policies (services/arena/pairing)


@dataclass
class PolicySpec:
    """A policy to compare: a name raters never see, a model spec (or an OpenAI-compatible URL), its settings."""

    name: str
    model: str = "default"
    generation: dict = field(default_factory=dict)
    # Names the model may call itself by; an arena answer naming its own model is an identity leak.
    aliases: list[str] = field(default_factory=list)


@dataclass
class CampaignSpec:
    """What a campaign collects, from which prompts and policies, and how tasks are scheduled."""

    name: str
    kind: str = "pairwise"
    prompts: str | None = None  # a prompts-format dataset: builtin:NAME, a file, a saved dataset or a Hub id
    prompts_split: str = "train"
    policies: list[PolicySpec] = field(default_factory=list)
    raters_per_task: int = 2
    max_raters_per_task: int = 3  # overlap grows up to this only on tasks whose judgments disagree
    gold_share: float = 0.0
    lease_minutes: float = 30.0
    strategy: str = "fewest-judgments-first"
    guidelines: str = ""
    rating_points: int = 5  # Likert scale of rating tasks: 1..rating_points
    allow_both_bad: bool = True
    rationale: str = "optional"  # optional | required | off
    flags: list[str] = field(default_factory=lambda: list(DEFAULT_FLAGS))
    allow_edits: bool = False  # pairwise: raters may improve the better response; the SFT export uses the edit
    undo_minutes: float = 10.0  # how long after submitting a rater may still undo a judgment
    arena: bool = True  # raters may start battles of their own prompts between two of the campaign's policies
    arena_min_seconds: float = 5.0  # the least reading time before an arena vote counts (both answers started)
    arena_max_new_tokens: int = 256
    arena_pairing: str = "uniform"  # uniform | informative: favour the battles that narrow the intervals most
    # Pre-labels and active learning, written offline by `plumb collect score` (never on the request path).
    reward_model: str | None = None  # the reward model (or comma-separated ensemble) that scores the tasks
    prelabels: str = "hidden"  # hidden | shown | after_vote: whether raters see the model's answer, and when
    auto_label_above: float | None = None  # a pairwise task the model is this sure of is labelled by the model
    auto_label_audit_share: float = 0.1  # of those, the share still sent to people, to keep checking the model
    language: str | None = None  # ISO 639-1 code of the prompts and answers (hygiene's language check); None: any
    # Data hygiene on import (`collect.domain.hygiene`): per rule off | keep | flag | drop, and thresholds;
    # None: no checks. `plumb collect clean` applies the same rules to the stored campaign.
    hygiene: dict | None = None

    def scale(self) -> list[dict]:
        """The pairwise answer options shown to raters, each with its preference value."""
        return scale_options(allow_both_bad=self.allow_both_bad)


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and check a campaign YAML; errors name the file and the key."""
    values = read_yaml(path)
    return campaign_from_dict(values, where=str(path))


def campaign_from_dict(values: dict, *, where: str = "campaign") -> CampaignSpec:
    """Build a `CampaignSpec` from a mapping (a YAML file or a stored definition), checking every key."""
    known = {f.name: f for f in dataclasses.fields(CampaignSpec)}
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            raise ConfigError(f"{where}: unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    if "name" not in values:
        raise ConfigError(f"{where}: key 'name' is required")
    values = dict(values)
    values["policies"] = [_policy(p, where, i) for i, p in enumerate(values.get("policies") or [])]
    spec = CampaignSpec(**values)
    _check(spec, where)
    return spec


def _policy(value, where: str, index: int) -> PolicySpec:
    if isinstance(value, str):
        return PolicySpec(name=value, model=value)
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(f"{where}: key 'policies': entry {index} needs a 'name' (and a 'model')")
    unknown = set(value) - {"name", "model", "generation", "aliases"}
    if unknown:
        raise ConfigError(f"{where}: key 'policies': entry {index} has unknown key(s) {', '.join(sorted(unknown))}")
    return PolicySpec(**value)


def _check(spec: CampaignSpec, where: str) -> None:
    checks = [
        ("name", isinstance(spec.name, str) and spec.name.strip() != "", "a non-empty string"),
        ("kind", spec.kind in KINDS, f"one of {', '.join(KINDS)}"),
        ("raters_per_task", _is_int(spec.raters_per_task) and spec.raters_per_task >= 1, "an integer of at least 1"),
        (
            "max_raters_per_task",
            _is_int(spec.max_raters_per_task) and spec.max_raters_per_task >= spec.raters_per_task,
            "an integer no smaller than raters_per_task",
        ),
        ("gold_share", isinstance(spec.gold_share, (int, float)) and 0 <= spec.gold_share < 1, "a number in [0, 1)"),
        ("lease_minutes", isinstance(spec.lease_minutes, (int, float)) and spec.lease_minutes > 0, "a positive number"),
        ("strategy", spec.strategy in STRATEGY_NAMES, f"one of {', '.join(STRATEGY_NAMES)}"),
        ("rating_points", _is_int(spec.rating_points) and spec.rating_points >= 2, "an integer of at least 2"),
        ("rationale", spec.rationale in ("optional", "required", "off"), "one of optional, required, off"),
        ("flags", isinstance(spec.flags, list) and all(isinstance(f, str) for f in spec.flags), "a list of strings"),
        ("guidelines", isinstance(spec.guidelines, str), "Markdown text"),
        ("allow_edits", isinstance(spec.allow_edits, bool), "true or false"),
        ("undo_minutes", isinstance(spec.undo_minutes, (int, float)) and spec.undo_minutes > 0, "a positive number"),
        ("arena", isinstance(spec.arena, bool), "true or false"),
        (
            "arena_min_seconds",
            isinstance(spec.arena_min_seconds, (int, float)) and spec.arena_min_seconds >= 0,
            "a number of seconds, 0 or more",
        ),
        (
            "arena_max_new_tokens",
            _is_int(spec.arena_max_new_tokens) and spec.arena_max_new_tokens >= 1,
            "an integer of at least 1",
        ),
        ("arena_pairing", spec.arena_pairing in ARENA_PAIRINGS, f"one of {', '.join(ARENA_PAIRINGS)}"),
        ("reward_model", spec.reward_model is None or isinstance(spec.reward_model, str), "a model path or id"),
        ("prelabels", spec.prelabels in PRELABEL_DISPLAYS, f"one of {', '.join(PRELABEL_DISPLAYS)}"),
        (
            "auto_label_above",
            spec.auto_label_above is None
            or (isinstance(spec.auto_label_above, (int, float)) and 0.5 <= spec.auto_label_above <= 1),
            "a confidence in [0.5, 1] (or null: no auto-labels)",
        ),
        (
            "auto_label_audit_share",
            isinstance(spec.auto_label_audit_share, (int, float)) and 0 <= spec.auto_label_audit_share <= 1,
            "a share in [0, 1]",
        ),
    ]
    checks.append(
        (
            "language",
            spec.language is None or (isinstance(spec.language, str) and re.fullmatch(r"[a-z]{2,3}", spec.language)),
            "an ISO 639-1 code such as en (or null: no language check)",
        )
    )
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{where}: key '{key}': expected {expected}, got {getattr(spec, key)!r}")
    if spec.hygiene is not None:
        settings_from_dict(spec.hygiene, where=where, language=spec.language)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def spec_of(campaign) -> CampaignSpec:
    """The `CampaignSpec` a stored campaign was created from."""
    return campaign_from_dict(campaign.definition, where=f"campaign '{campaign.name}'")


def as_definition(spec: CampaignSpec) -> dict:
    """The plain mapping stored with a campaign (and accepted back by `campaign_from_dict`)."""
    return dataclasses.asdict(spec)
