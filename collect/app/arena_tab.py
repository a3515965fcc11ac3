"""The arena tab: a rater types a prompt, two anonymous policies answer side by side as they stream, the rater votes.

Voting opens once both answers have started and the campaign's `arena_min_seconds` have
passed, without waiting for the streams to end; the server checks the same rule when the
vote arrives (`collect.services.arena.battles`). Only after the vote are the policies' names shown.
Answers are rendered with `safe_markdown`: their HTML shows as typed and runs nothing.

The battle itself stays on the server (`ArenaBattles`, one per app); the page keeps its id
in a `gr.State`, and who votes comes from the login (`gr.Request.username`).
"""

import html

import gradio as gr

from collect.app.display import safe_markdown
from collect.app.keys import ARENA_KEYS, button_label, element_id
from collect.domain.answers import BOTH_BAD_CHOICE
from collect.domain.campaign import CampaignSpec
from collect.services.arena.battles import (
    ArenaBattles,
    ArenaError,
    cast_vote,
    check_rater,
    follow,
    run_battle,
    start_battle,
)
from collect.store import StoreError
from plumb.generation import LoadedModels

# Each streaming battle holds one of Gradio's worker threads while it runs; more wait in Gradio's queue.
CONCURRENT_BATTLES = 16
WAITING = "*…*"


def create_arena_tab(sessions, campaign: str, spec: CampaignSpec, models: LoadedModels | None = None) -> None:
    """Lay out the arena tab of `campaign` and bind its events; models load on the first battle that needs them.

    `models` may be shared with other work of the process (the background candidate generation).
    """
    battles, models = ArenaBattles(), models or LoadedModels()
    gr.Markdown(
        "Type a prompt: two anonymous models answer side by side. Vote for the better answer once both "
        f"have started and you have read them for at least {spec.arena_min_seconds:g} s; their names are "
        "shown after your vote."
    )
    battle_id = gr.State(None)
    prompt = gr.Textbox(label="Your prompt", lines=3, elem_id="plumb-arena-prompt")
    with gr.Row():
        start = gr.Button("Start battle", variant="primary", elem_id="plumb-arena-start")
        new = gr.Button("New battle", visible=False, elem_id="plumb-arena-new")
    message = gr.Markdown(elem_id="plumb-arena-message")
    headings, answers = [], []
    with gr.Row(equal_height=True):
        for side in "AB":
            with gr.Column():
                headings.append(gr.Markdown(f"### Model {side}", elem_id=f"plumb-arena-heading-{side.lower()}"))
                answers.append(
                    gr.Markdown(elem_id=f"plumb-arena-answer-{side.lower()}", min_height=160, container=True)
                )
    with gr.Row():
        votes = {
            vote: gr.Button(
                button_label(key, vote),
                elem_id=element_id(key, "arena"),
                interactive=False,
                size="sm",
                variant="secondary" if vote == BOTH_BAD_CHOICE else "primary",
            )
            for key, vote in ARENA_KEYS
        }

    def on_start(text: str, old_id: str | None, request: gr.Request):
        battles.discard(old_id, rater=request.username)
        try:
            check_rater(sessions, request.username)
            battle = battles.add(start_battle(spec, rater=request.username, prompt=text or ""))
        except ArenaError as error:
            yield {message: str(error)}
            return
        run_battle(battle, models.stream)
        progresses, shown_message, could_vote = follow(battle), None, False
        try:  # from the first yield: the page may go away at any of them
            yield {
                battle_id: battle.id,
                prompt: gr.Textbox(interactive=False),
                start: gr.Button(interactive=False),
                new: gr.Button(visible=True),
                message: "Both models are answering…",
                **{heading: f"### Model {side}" for heading, side in zip(headings, "AB")},
                **{answer: WAITING for answer in answers},
                **_votes_open(votes, False),
            }
            for progress in progresses:
                values = {
                    answer: safe_markdown(text) if text.strip() else WAITING
                    for answer, text in zip(answers, progress.texts)
                }
                if _progress_message(progress, spec) != shown_message:
                    values[message] = shown_message = _progress_message(progress, spec)
                if progress.can_vote != could_vote:
                    values.update(_votes_open(votes, progress.can_vote))
                    could_vote = progress.can_vote
                yield values
        finally:
            # Gradio closes this generator when the page goes away: without this both models would answer on
            # to `arena_max_new_tokens` for nobody. Closing `follow` stops the battle unless a vote was cast.
            progresses.close()
            if battle.vote is None:
                battle.stop()

    def on_new(old_id: str | None, request: gr.Request):
        battles.discard(old_id, rater=request.username)
        return {
            battle_id: None,
            prompt: gr.Textbox(value="", interactive=True),
            start: gr.Button(interactive=True),
            new: gr.Button(visible=False),
            message: "",
            **{heading: f"### Model {side}" for heading, side in zip(headings, "AB")},
            **{answer: "" for answer in answers},
            **_votes_open(votes, False),
        }

    def vote_handler(vote: str):
        def on_vote(current_id: str | None, request: gr.Request):
            try:
                battle = battles.get(current_id, rater=request.username)
                cast_vote(sessions, campaign=campaign, battle=battle, rater_name=request.username, vote=vote)
            except StoreError as error:  # a refused vote, or an account deactivated meanwhile
                return {message: str(error)}
            # The vote stopped the battle; once its stream event has sent its last update (within a poll), the
            # reveal below is the page's final word: a stream update arriving after it would hide it.
            battle.followed.wait(timeout=2)
            names = [html.escape(side.policy.name) for side in battle.sides]
            return {
                message: _reveal_message(vote, names, battle.leaks()),
                **{heading: f"### Model {side}: {name}" for heading, side, name in zip(headings, "AB", names)},
                **{
                    answer: safe_markdown(side.shown) if side.shown.strip() else "*(empty answer)*"
                    for answer, side in zip(answers, battle.sides)
                },
                **_votes_open(votes, False),
            }

        return on_vote

    everything = [battle_id, prompt, start, new, message, *headings, *answers, *votes.values()]
    # No progress overlay: it would cover the answers and the vote buttons while the answers stream.
    start.click(
        on_start,
        inputs=[prompt, battle_id],
        outputs=everything,
        show_progress="hidden",
        concurrency_limit=CONCURRENT_BATTLES,
        api_name="arena_start",
    )
    new.click(on_new, inputs=[battle_id], outputs=everything, api_name="arena_new")
    for key, vote in ARENA_KEYS:
        # The vote stops the battle's streams itself (`cast_vote`), so a vote refused as too early leaves them running.
        # A vote may hold its worker up to 2 s (`followed.wait`): Gradio's default of one at a time would queue
        # every rater's vote behind it.
        votes[vote].click(
            vote_handler(vote),
            inputs=[battle_id],
            outputs=everything,
            concurrency_limit=CONCURRENT_BATTLES,
            api_name=f"arena_vote_{key.lower()}",
        )


def _votes_open(votes: dict, open_: bool) -> dict:
    return {button: gr.Button(interactive=open_) for button in votes.values()}


def _progress_message(progress, spec: CampaignSpec) -> str:
    for side, error in zip("AB", progress.errors):
        if error is not None:
            return (
                f"Model {side} could not answer ({html.escape(error)}), so this battle cannot be judged. "
                "Start a new battle."
            )
    if progress.can_vote:
        return "Vote when you are ready; the names are shown after your vote."
    return f"Voting opens once both answers have started and you have read them for {spec.arena_min_seconds:g} s."


def _reveal_message(vote: str, names: list[str], leaks: list[str]) -> str:
    text = f"Saved: **{vote}**. Model A was **{names[0]}**, model B was **{names[1]}**."
    if leaks:
        text += (
            f" Model {' and '.join(leaks)} named itself, so your vote is kept but marked as an identity leak "
            "and left out of the leaderboard."
        )
    return text
