"""Simulated raters judge a campaign through the same scheduler as people (`plumb collect simulate`).

Each simulated rater (a rater of kind `simulated`, named sim-1..sim-N, no password) follows
an oracle with the noise model of `collect.domain.simulated_raters`: a reward model directory
(comma-separated: the mean of an ensemble), or `dataset`, the `oracle_score` each
candidate was imported with (a dataset's own human label). They lease tasks with
`next_task` and answer with `submit_judgment`, so overlap, gold tasks and disagreement
growth work as for people, and quality, export and reward training run on real rows.
Use them to study a campaign's design, or to fill a campaign for a demo or a load test.
Running it again continues where it stopped: the store knows what each rater judged.

Rating campaigns: a rating is the quantile bin of the candidate's noisy oracle score
among all the campaign's candidates, so each Likert point is about equally used.
"""

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from itertools import combinations

import numpy as np
from sqlalchemy import select

from collect.domain.campaign import spec_of
from collect.domain.simulated_raters import (
    SimulatedRaterParams,
    pairwise_answer,
    ranking_answer,
    rater_params,
    rating_answer,
    rating_edges,
)
from collect.services.scheduling import next_task, submit_judgment
from collect.store import (
    Campaign,
    Candidate,
    Prompt,
    Rater,
    RaterError,
    StoreError,
    Task,
    campaign_by_name,
    create_rater,
    live_judgments_per_rater,
)

logger = logging.getLogger(__name__)

DATASET_ORACLE = "dataset"


class SimulationError(StoreError):
    """Simulated raters cannot judge this campaign as asked; the message says why."""


def simulate(
    sessions,
    campaign_name: str,
    *,
    raters: int,
    oracle: str | Callable,
    params: SimulatedRaterParams,
    seed: int = 0,
    max_judgments: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> dict:
    """Let `raters` simulated raters judge the campaign until nothing is left for them (or `max_judgments`).

    `oracle`: a reward model directory (or several, comma-separated), "dataset", or a callable
    (list of conversations) -> list of scores. Returns what they did: judgments, tie rate,
    both-bad rate, the share of decisive answers that chose the first shown, and agreement with the oracle.
    """
    from tqdm.auto import tqdm

    # Raters, campaign and the candidates to score
    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name=campaign_name)
        spec = spec_of(campaign)
        names = simulated_raters(session, raters)
        candidates = pool_candidates(session, campaign)
        done = live_judgments_per_rater(session, campaign.id)
    if not candidates:
        raise SimulationError(f"campaign '{campaign_name}' has no tasks to judge: import prompts with candidates")
    if not spec.allow_both_bad and params.both_bad_below is not None:
        logger.warning("Campaign '%s' offers no 'both bad': both_bad_below is ignored", campaign_name)
        params = replace(params, both_bad_below=None)

    # Oracle scores, once for every candidate
    scores = oracle_scores(oracle, candidates, batch_size=batch_size, progress=progress)
    edges = rating_edges(list(scores.values()), spec.rating_points) if spec.kind == "rating" else None

    # Judgments, the raters taking turns
    own = {name: rater_params(params, name, seed) for name in names}
    # Seeded with what is already judged too, so a second run does not replay the first run's draws.
    answer_rngs = {name: random.Random(f"{seed}:{name}:{done.get(name, 0)}") for name in names}
    shuffle_rng, tally, made = random.Random(f"{seed}:{sum(done.values())}"), Counter(), 0
    active = list(names)
    with tqdm(total=max_judgments, desc="Simulated judgments", unit="judgment", disable=not progress) as bar:
        while active and (max_judgments is None or made < max_judgments):
            for name in list(active):
                if max_judgments is not None and made >= max_judgments:
                    break
                with sessions.begin() as session:
                    answered = judge_next(
                        session,
                        campaign.id,
                        name,
                        own[name],
                        scores,
                        answer_rngs[name],
                        shuffle_rng,
                        edges=edges,
                        rationale_required=spec.rationale == "required",
                    )
                if answered is None:
                    active.remove(name)
                    continue
                tally.update(answered)
                made += 1
                bar.update(1)
    summary = {
        "campaign": campaign_name,
        "raters": names,
        "judgments": made,
        "oracle": oracle if isinstance(oracle, str) else getattr(oracle, "__name__", "callable"),
        **simulation_rates(tally),
    }
    logger.info("Simulated raters made %d judgments in campaign '%s': %s", made, campaign_name, summary)
    return summary


def simulated_raters(session, count: int) -> list[str]:
    """The names sim-1..sim-`count`, created as simulated raters when new; a person of that name is an error."""
    if count < 1:
        raise SimulationError(f"raters must be at least 1, got {count}")
    names = [f"sim-{i}" for i in range(1, count + 1)]
    for name in names:
        rater = session.scalar(select(Rater).where(Rater.name == name))
        if rater is None:
            create_rater(session=session, name=name, kind="simulated")
        elif rater.kind != "simulated":
            raise RaterError(f"rater '{name}' exists and is not simulated (kind {rater.kind}): rename them first")
        elif not rater.active:
            raise RaterError(f"simulated rater '{name}' is deactivated: reactivate them or ask for fewer raters")
    return names


def pool_candidates(session, campaign: Campaign) -> dict[int, tuple[list, dict]]:
    """{candidate id: (conversation: prompt + completion messages, settings)} of the campaign's pool tasks."""
    wanted = {
        cid
        for ids in session.scalars(
            select(Task.candidate_ids).where(Task.campaign_id == campaign.id, Task.source == "pool")
        )
        for cid in ids
    }
    rows = session.execute(
        select(Candidate, Prompt.messages)
        .join(Prompt, Prompt.id == Candidate.prompt_id)
        .where(Prompt.campaign_id == campaign.id)
        .order_by(Candidate.id)
    )
    return {
        candidate.id: (messages + candidate.completion, candidate.settings or {})
        for candidate, messages in rows
        if candidate.id in wanted
    }


def oracle_scores(
    oracle: str | Callable, candidates: dict[int, tuple[list, dict]], *, batch_size: int = 32, progress: bool = True
) -> dict[int, float]:
    """The oracle's score of every candidate: its imported `oracle_score`, a reward model's, or a callable's."""
    ids = list(candidates)
    if isinstance(oracle, str) and oracle == DATASET_ORACLE:
        missing = [cid for cid in ids if not isinstance(candidates[cid][1].get("oracle_score"), (int, float))]
        if missing:
            raise SimulationError(
                f"{len(missing)} candidate(s) (ids {missing[:5]}...) have no oracle_score: import "
                'candidates with "oracle_score": NUMBER, or give --oracle a reward model directory'
            )
        return {cid: float(candidates[cid][1]["oracle_score"]) for cid in ids}
    conversations = [candidates[cid][0] for cid in ids]
    if callable(oracle):
        values = np.asarray(oracle(conversations), dtype=float)
    else:
        values = reward_model_scores(oracle, conversations, batch_size=batch_size, progress=progress)
    if values.shape != (len(ids),):
        raise SimulationError(f"the oracle gave {values.shape} scores for {len(ids)} candidates")
    return dict(zip(ids, values.tolist()))


def reward_model_scores(spec: str, conversations: list[list[dict]], *, batch_size: int, progress: bool) -> np.ndarray:
    """The mean reward of each conversation over the reward model(s) of a comma-separated spec, shape (n,)."""
    # Lazily: collect may import reward only to score, and `import collect` must stay free of torch.
    from reward.score import load_reward_model, model_paths, score_conversations, trained_max_length

    return np.mean(
        [
            score_conversations(
                load_reward_model(path),
                conversations,
                max_length=trained_max_length(path),
                batch_size=batch_size,
                progress=progress,
            )
            for path in model_paths(spec)
        ],
        axis=0,
    )


def judge_next(
    session,
    campaign_id: int,
    rater_name: str,
    params: SimulatedRaterParams,
    scores: dict[int, float],
    rng: random.Random,
    shuffle_rng: random.Random,
    *,
    edges: list[float] | None = None,
    rationale_required: bool = False,
) -> Counter | None:
    """Lease the rater's next task and answer it from the oracle's scores as shown; its tally, or None when done."""
    campaign = session.get(Campaign, campaign_id)
    rater = session.scalar(select(Rater).where(Rater.name == rater_name))
    assignment = next_task(session=session, campaign=campaign, rater=rater, rng=shuffle_rng)
    if assignment is None:
        return None
    task = session.get(Task, assignment.task_id)
    shown = [scores[task.candidate_ids[k]] for k in assignment.candidate_order]  # display order, A first
    answer = answer_in_display_order(task.kind, shown, params, rng, edges=edges)
    submit_judgment(
        session=session,
        rater=rater,
        assignment_id=assignment.id,
        **answer,
        rationale="simulated rater" if rationale_required else "",
    )
    return answer_tally(answer, shown)


def answer_in_display_order(
    kind: str, shown: list[float], params: SimulatedRaterParams, rng: random.Random, *, edges: list[float] | None = None
) -> dict:
    """The keyword answer `submit_judgment` takes for a task of `kind` whose oracle scores are `shown`."""
    if kind == "pairwise":
        return pairwise_answer(shown[0], shown[1], params, rng)
    if kind == "ranking":
        return {"ranks": ranking_answer(shown, params, rng)}
    return {"ratings": rating_answer(shown, edges, params, rng)}


def answer_tally(answer: dict, shown: list[float]) -> Counter:
    """Counts over the pairs an answer compares (a pair, or every pair of a ranking), in display order.

    pairs, ties, both_bad, decisive, first_shown (the earlier shown one won), signed (the
    oracle is not tied) and agree (a decisive answer on the oracle's side). Ratings count nothing.
    """
    if answer.get("both_bad"):
        return Counter(pairs=1, both_bad=1)
    if answer.get("preference") is not None:
        ranks = [1, 1] if answer["preference"] == 0 else [1, 2] if answer["preference"] > 0 else [2, 1]
    elif answer.get("ranks") is not None:
        ranks = answer["ranks"]
    else:
        return Counter()
    tally = Counter()
    for i, j in combinations(range(len(ranks)), 2):
        tally["pairs"] += 1
        if ranks[i] == ranks[j]:
            tally["ties"] += 1
            continue
        tally["decisive"] += 1
        tally["first_shown"] += ranks[i] < ranks[j]
        if shown[i] != shown[j]:
            tally["signed"] += 1
            tally["agree"] += (ranks[i] < ranks[j]) == (shown[i] > shown[j])
    return tally


def simulation_rates(tally: Counter) -> dict:
    """tie_rate, both_bad_rate (of all compared pairs), first_shown_rate, oracle_agreement (of decisive ones)."""

    def share(part: str, whole: str):
        return round(tally[part] / tally[whole], 4) if tally[whole] else None

    return {
        "tie_rate": share("ties", "pairs"),
        "both_bad_rate": share("both_bad", "pairs"),
        "first_shown_rate": share("first_shown", "decisive"),
        "oracle_agreement": share("agree", "signed"),
    }
