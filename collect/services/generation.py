"""Candidates: every policy of a campaign answers the prompts it has not answered yet.

A policy's `model` is anything `plumb.models.load_policy` loads (run locally with
transformers, batched, on the GPU when there is one), or the URL of an OpenAI-compatible
server (vLLM, TGI, llama.cpp: `http://host:8000/v1`), asked through `plumb.openai_client`
(API key, retries, concurrent requests; see its generation keys). Each batch is committed as it
finishes, so an interrupted run resumes where it stopped; the generation settings are
stored with every candidate. Tasks are built once every policy has answered.
`CandidateFiller` does the same a chunk of prompts at a time, in the foreground or in a
background thread while the app serves (`plumb collect serve`'s `generate_first`, `generate_rest`).
"""

import logging
import threading

from sqlalchemy import func, select
from tqdm.auto import tqdm

from collect.domain.campaign import PolicySpec, spec_of
from collect.store import (
    CampaignError,
    Candidate,
    Policy,
    Prompt,
    Task,
    add_candidate,
    build_tasks,
    campaign_by_name,
    ensure_policy,
    opened_store,
    record_event,
)
from plumb.generation import Generator, LoadedModels, is_url, load_generator, local_generator, openai_generator
from plumb.openai_client import api_key, check_settings

logger = logging.getLogger(__name__)


def generate_candidates(
    campaign_name: str,
    *,
    policies: list[str] | None = None,
    batch_size: int = 8,
    db: str | None = None,
    generators: dict[str, Generator] | None = None,
) -> dict:
    """Generate what is missing for each policy and build the tasks; returns new candidates per policy and new tasks.

    `generators` replaces the generator of a policy by name (tests, custom backends).
    """
    with opened_store(db) as sessions:
        with sessions() as session:
            spec = spec_of(campaign_by_name(session=session, name=campaign_name))
        chosen = [p for p in spec.policies if not policies or p.name in policies]
        unknown = set(policies or []) - {p.name for p in spec.policies}
        if unknown:
            raise CampaignError(f"campaign '{campaign_name}' has no policy {', '.join(sorted(unknown))}")
        check_served_settings([p for p in chosen if p.name not in (generators or {})])
        made = {}
        for policy in chosen:
            generator = (generators or {}).get(policy.name) or make_generator(policy)
            made[policy.name] = generate_missing(sessions, campaign_name, policy, generator, batch_size=batch_size)
        new_tasks = 0
        if len(chosen) == len(spec.policies):  # with a policy left out, its candidates would be missing from tasks
            with sessions.begin() as session:
                campaign = campaign_by_name(session=session, name=campaign_name)
                new_tasks = len(build_tasks(session=session, campaign=campaign, overlap=spec.raters_per_task))
    logger.info("New candidates per policy: %s; new tasks: %d", made, new_tasks)
    return {"candidates": made, "new_tasks": new_tasks}


def candidate_rows(session, campaign_name: str) -> list[dict]:
    """The campaign's prompts that have candidates, with them, as rows `plumb collect import` reads back.

    Candidates keep their policy and generation settings, so a campaign's answers can be shipped
    (e.g. the demo's, under plumb/assets/demo-candidates) and imported without generating again.
    """
    campaign = campaign_by_name(session=session, name=campaign_name)
    rows = {}
    query = (
        select(Prompt.id, Prompt.external_id, Prompt.messages, Policy.name, Candidate.completion, Candidate.settings)
        .join(Candidate, Candidate.prompt_id == Prompt.id)
        .join(Policy, Policy.id == Candidate.policy_id)
        .where(Prompt.campaign_id == campaign.id)
        .order_by(Prompt.id, Policy.id, Candidate.id)
    )
    for prompt_id, external_id, messages, policy, completion, settings in session.execute(query):
        row = rows.setdefault(prompt_id, {"prompt_id": external_id, "prompt": messages, "candidates": []})
        row["candidates"].append({"policy": policy, "completion": completion, "settings": settings})
    return list(rows.values())


def check_served_settings(policies: list[PolicySpec]) -> None:
    """Refuse a URL policy's setting the server would not get, or its missing API key, before any policy
    sends a request or loads a model."""
    for policy in policies:
        if is_url(policy.model):
            where = f"policy '{policy.name}' ({policy.model})"
            check_settings(policy.generation, where=where)
            api_key(policy.generation, where=where)


def settings_of(policy: PolicySpec) -> dict:
    """What is recorded with each candidate: the backend, the model and the generation settings."""
    backend = "openai" if is_url(policy.model) else "transformers"
    return {"backend": backend, "model": policy.model, **policy.generation}


def generate_missing(
    sessions, campaign_name: str, policy: PolicySpec, generator: Generator, *, batch_size: int, limit: int | None = None
) -> int:
    """Answer, batch by batch, the prompts the policy has not answered (the first `limit` of them, in prompt order);
    each batch commits. Returns how many."""
    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name=campaign_name)
        stored = ensure_policy(session=session, campaign=campaign, name=policy.name, spec=policy.model)
        answered = select(Candidate.prompt_id).where(Candidate.policy_id == stored.id)
        # A rater's arena prompt was answered by the two policies of its battle; the others' answers would go unused.
        battles = select(Task.prompt_id).where(Task.campaign_id == campaign.id, Task.source == "arena")
        todo = session.execute(
            select(Prompt.id, Prompt.messages)
            .where(Prompt.campaign_id == campaign.id, Prompt.id.not_in(answered), Prompt.id.not_in(battles))
            .order_by(Prompt.id)
            .limit(limit)
        ).all()
    settings = settings_of(policy)
    with tqdm(total=len(todo), desc=f"generate {policy.name}", unit="prompt") as progress:
        for batch in first_alone(todo, batch_size):
            texts = generator([messages for _, messages in batch])
            with sessions.begin() as session:
                for (prompt_id, _), text in zip(batch, texts):
                    add_candidate(
                        session=session,
                        prompt=session.get(Prompt, prompt_id),
                        policy=stored,
                        completion=[{"role": "assistant", "content": text}],
                        settings=settings,
                    )
                record_event(session=session, action="candidates.generated", policy=policy.name, count=len(batch))
            progress.update(len(batch))
    return len(todo)


def first_alone(items: list, batch_size: int) -> list[list]:
    """`items` in batches of `batch_size`, the very first item alone: after it, the progress bar has a rate and
    can say how long the rest will take, where a whole first batch left it at 0/8 for minutes on a slow CPU."""
    if not items:
        return []
    rest = items[1:]
    return [items[:1], *(rest[start : start + batch_size] for start in range(0, len(rest), batch_size))]


def make_generator(policy: PolicySpec, models: LoadedModels | None = None) -> Generator:
    """The generator for a policy: an OpenAI-compatible server for a URL, else local transformers.

    With `models`, a local model already loaded there (e.g. for another policy) is reused.
    """
    if settings_of(policy)["backend"] == "openai":
        return openai_generator(policy.model, policy.generation)
    if models is not None:
        return local_generator(*models.get(policy.model), policy.generation)
    return load_generator(policy.model, policy.generation)


class CandidateFiller:
    """Answers a campaign's prompts with its policies, a chunk of prompts at a time, building tasks after each chunk.

    State lives here because the generators (loaded models) are made once and reused by
    every chunk, in the foreground before serving and then in the background thread.
    """

    def __init__(self, sessions, campaign: str, *, batch_size: int = 8, models: LoadedModels | None = None):
        with sessions() as session:
            self.spec = spec_of(campaign_by_name(session=session, name=campaign))
        check_served_settings(self.spec.policies)
        self.sessions, self.campaign, self.batch_size = sessions, campaign, batch_size
        self.models = models or LoadedModels()  # policies of one model (the demo's two temperatures) share it
        self.generators = {}
        self.error: Exception | None = None

    def fill(self, prompts: int | None) -> int:
        """Answer up to `prompts` more prompts (None: all) with every policy; returns the new tasks."""
        for policy in self.spec.policies:
            generate_missing(
                self.sessions, self.campaign, policy, self._generator(policy), batch_size=self.batch_size, limit=prompts
            )
        with self.sessions.begin() as session:
            campaign = campaign_by_name(session=session, name=self.campaign)
            return len(build_tasks(session=session, campaign=campaign, overlap=self.spec.raters_per_task))

    def _generator(self, policy: PolicySpec) -> Generator:
        # Made at the first batch that needs it: with every prompt answered (shipped candidates), no model loads.
        def generate(batch: list) -> list[str]:
            if policy.name not in self.generators:
                self.generators[policy.name] = make_generator(policy, self.models)
            return self.generators[policy.name](batch)

        return generate

    def fill_first(self, prompts: int) -> int:
        """Before the page opens: answer `prompts` more prompts, unless tasks are already waiting for raters
        (a restart, or shipped candidates), whose page should open at once; returns the new tasks."""
        with self.sessions() as session:
            campaign = campaign_by_name(session=session, name=self.campaign)
            waiting = session.scalar(
                select(func.count(Task.id)).where(
                    Task.campaign_id == campaign.id,
                    Task.source == "pool",
                    Task.judgment_count < Task.target_overlap,
                )
            )
        if waiting:
            logger.info("%d tasks are waiting for raters: the page opens now, candidates come behind it", waiting)
            return 0
        logger.info("Generating candidates for the first %d prompts before the page opens", prompts)
        return self.fill(prompts)

    def fill_in_background(self, *, chunk: int) -> threading.Thread:
        """Answer the remaining prompts in a daemon thread, `chunk` prompts at a time; errors are logged and kept."""

        def run() -> None:
            try:
                while new_tasks := self.fill(chunk):
                    logger.info("Background generation: %d new tasks in the pool", new_tasks)
                logger.info("Background generation: every prompt of '%s' has candidates", self.campaign)
            except Exception as error:  # a background failure must not stop the server raters are using
                self.error = error
                logger.error("Background generation stopped: %s", error)

        thread = threading.Thread(target=run, name="plumb-candidates", daemon=True)
        thread.start()
        return thread
