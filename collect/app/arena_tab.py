"""The arena tab: a rater types a prompt, two anonymous policies answer side by side as they stream, the rater votes,
then may send a follow-up that both answer, and vote again.

Voting opens once both answers have started and the campaign's `arena_min_seconds` have
passed, without waiting for the streams to end; the server checks the same rule when the
vote arrives (`collect.services.arena.battles`). A vote never cuts the answers off: they
stream on, each side says when it has finished, and a vote cast before both had finished
is said to count for the leaderboard only. The policies' names are shown after the first vote.
Answers are rendered with `safe_markdown`: their HTML shows as typed and runs nothing.

The battle itself stays on the server (`ArenaBattles`, one per app); the page keeps its id
in a `gr.State`, and who votes comes from the login (`gr.Request.username`). What the page
shows is drawn from the battle's `Progress` by one function (`render`), whichever event draws it.
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
    send_follow_up,
    start_battle,
)
from collect.services.arena.state import Battle, Progress
from collect.services.arena.streams import follow, run_battle
from collect.store import StoreError
from plumb.generation import LoadedModels

# Each streaming battle holds one of Gradio's worker threads while it runs; more wait in Gradio's queue.
CONCURRENT_BATTLES = 16
WAITING = "*…*"
EMPTY = "*(empty answer)*"
FINISHED, ANSWERING, FAILED = "✓ finished", "answering…", "✗ could not answer"


def create_arena_tab(sessions, campaign: str, spec: CampaignSpec, models: LoadedModels | None = None) -> None:
    """Lay out the arena tab of `campaign` and bind its events; models load on the first battle that needs them.

    `models` may be shared with other work of the process (the background candidate generation).
    """
    battles, models = ArenaBattles(), models or LoadedModels()
    gr.Markdown(
        "Type a prompt: two anonymous models answer side by side. Vote for the better answer once both "
        f"have started and you have read them for at least {spec.arena_min_seconds:g} s; their names are "
        "shown after your vote. Both answers go on to their end after your vote: a vote cast before both "
        "finished counts for the leaderboard only. Then you may send a follow-up to both."
    )
    battle_id = gr.State(None)
    prompt = gr.Textbox(label="Your prompt", lines=3, elem_id="plumb-arena-prompt")
    with gr.Row():
        start = gr.Button("Start battle", variant="primary", elem_id="plumb-arena-start")
        new = gr.Button("New battle", visible=False, elem_id="plumb-arena-new")
    message = gr.Markdown(elem_id="plumb-arena-message")
    headings, answers, statuses = [], [], []
    with gr.Row(equal_height=True):
        for side in "ab":
            with gr.Column():
                headings.append(gr.Markdown(f"### Model {side.upper()}", elem_id=f"plumb-arena-heading-{side}"))
                answers.append(gr.Markdown(elem_id=f"plumb-arena-answer-{side}", min_height=160, container=True))
                statuses.append(gr.Markdown(elem_id=f"plumb-arena-status-{side}"))
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
    with gr.Row():
        follow_up = gr.Textbox(
            label="Your follow-up to both models", lines=2, visible=False, scale=4, elem_id="plumb-arena-follow-up"
        )
        send = gr.Button("Send follow-up", visible=False, scale=1, elem_id="plumb-arena-send")

    def render(battle: Battle, progress: Progress) -> dict:
        """Every part of the page a battle decides, as plain values (compared to send only what changed)."""
        voted = progress.vote is not None or progress.names_known
        names = [html.escape(policy.name) for policy in battle.policies]
        return {
            message: _message(progress, names, spec),
            **{
                heading: f"### Model {side}" + (f": {name}" if voted else "")
                for heading, side, name in zip(headings, "AB", names)
            },
            **{
                answer: _conversation(progress.prompts, texts, ended)
                for answer, texts, ended in zip(answers, progress.answers, _ended(progress))
            },
            **{status: _status(progress, index) for index, status in enumerate(statuses)},
            **{button: ("button", True, progress.can_vote) for button in votes.values()},
            follow_up: ("textbox", progress.vote is not None, progress.can_follow_up),
            send: ("button", progress.vote is not None, progress.can_follow_up),
        }

    def stream(battle: Battle):
        """Show the current turn as it streams, sending only what changed, until it settles (`follow`)."""
        progresses, shown = follow(battle), {}
        turn = battle.turn
        try:  # from the first yield: the page may go away at any of them
            for progress in progresses:
                drawn = render(battle, progress)
                changed = {part: value for part, value in drawn.items() if shown.get(part) != value}
                if changed:  # Gradio takes an empty dict for one missing value, not for no updates
                    yield _updates(changed)
                shown = drawn
        finally:
            # Gradio closes this generator when the page goes away: without this both models would answer on
            # to `arena_max_new_tokens` for nobody. A turn with a vote runs on (`stop` leaves it), to be stored whole.
            progresses.close()
            battle.stop(turn)

    def on_start(text: str, old_id: str | None, request: gr.Request):
        battles.discard(old_id, rater=request.username)
        try:
            check_rater(sessions, request.username)
            battle = battles.add(
                start_battle(spec, rater=request.username, prompt=text or "", sessions=sessions, campaign=campaign)
            )
        except ArenaError as error:
            yield {message: str(error)}
            return
        run_battle(battle, models.stream)
        yield {
            battle_id: battle.id,
            prompt: gr.Textbox(interactive=False),
            start: gr.Button(interactive=False),
            new: gr.Button(visible=True),
            message: "Both models are answering…",
        }
        yield from stream(battle)

    def on_follow_up(text: str, current_id: str | None, request: gr.Request):
        try:
            check_rater(sessions, request.username)
            battle = battles.get(current_id, rater=request.username)
            send_follow_up(battle, text or "")
        except ArenaError as error:
            yield {message: str(error)}
            return
        run_battle(battle, models.stream)
        yield {follow_up: gr.Textbox(value="", interactive=False), message: "Both models are answering…"}
        yield from stream(battle)

    def on_new(old_id: str | None, request: gr.Request):
        battles.discard(old_id, rater=request.username)
        return {
            battle_id: None,
            prompt: gr.Textbox(value="", interactive=True),
            start: gr.Button(interactive=True),
            new: gr.Button(visible=False),
            message: "",
            **{heading: f"### Model {side}" for heading, side in zip(headings, "AB")},
            **{part: "" for part in (*answers, *statuses)},
            **{button: gr.Button(interactive=False) for button in votes.values()},
            follow_up: gr.Textbox(value="", visible=False),
            send: gr.Button(visible=False),
        }

    def vote_handler(vote: str):
        def on_vote(current_id: str | None, request: gr.Request):
            try:
                battle = battles.get(current_id, rater=request.username)
                cast_vote(sessions, campaign=campaign, battle=battle, rater_name=request.username, vote=vote)
            except StoreError as error:  # a refused vote, or an account deactivated meanwhile
                return {message: str(error)}
            if not battle.turn.followed.is_set():
                # The turn's stream event is still drawing the page: it shows the vote at its next update, and an
                # older update of it arriving after anything drawn here would undo that.
                return {button: gr.Button(interactive=False) for button in votes.values()}
            return _updates(render(battle, battle.progress()))

        return on_vote

    everything = [
        battle_id,
        prompt,
        start,
        new,
        message,
        *headings,
        *answers,
        *statuses,
        *votes.values(),
        follow_up,
        send,
    ]
    # No progress overlay: it would cover the answers and the vote buttons while the answers stream.
    start.click(
        on_start,
        inputs=[prompt, battle_id],
        outputs=everything,
        show_progress="hidden",
        concurrency_limit=CONCURRENT_BATTLES,
        api_name="arena_start",
    )
    gr.on(
        [send.click, follow_up.submit],
        on_follow_up,
        inputs=[follow_up, battle_id],
        outputs=everything,
        show_progress="hidden",
        concurrency_limit=CONCURRENT_BATTLES,
        api_name="arena_follow_up",
    )
    new.click(on_new, inputs=[battle_id], outputs=everything, api_name="arena_new")
    for key, vote in ARENA_KEYS:
        # A vote refused as too early leaves the battle as it was; an accepted one leaves the answers streaming.
        votes[vote].click(
            vote_handler(vote),
            inputs=[battle_id],
            outputs=everything,
            concurrency_limit=CONCURRENT_BATTLES,
            api_name=f"arena_vote_{key.lower()}",
        )


def _updates(values: dict) -> dict:
    """Gradio updates from `render`'s plain values: ("button", visible, interactive) and ("textbox", ...) tuples."""
    made = {}
    for part, value in values.items():
        if isinstance(value, tuple):
            kind, visible, interactive = value
            value = (gr.Button if kind == "button" else gr.Textbox)(visible=visible, interactive=interactive)
        made[part] = value
    return made


def _ended(progress: Progress) -> list[bool]:
    return [finished or error is not None for finished, error in zip(progress.finished, progress.errors)]


def _conversation(prompts: tuple[str, ...], texts: tuple[str, ...], ended: bool) -> str:
    """One side's answers as Markdown; from the second turn on, each after the prompt it answers."""
    shown = [
        safe_markdown(text) if text.strip() else (EMPTY if ended or k < len(texts) - 1 else WAITING)
        for k, text in enumerate(texts)
    ]
    if len(prompts) == 1:
        return shown[0]
    return "\n\n---\n\n".join(f"**You:** {safe_markdown(p)}\n\n{answer}" for p, answer in zip(prompts, shown))


def _status(progress: Progress, index: int) -> str:
    if progress.errors[index] is not None:
        return FAILED
    return FINISHED if progress.finished[index] else ANSWERING


def _message(progress: Progress, names: list[str], spec: CampaignSpec) -> str:
    if progress.vote is not None:
        return _reveal_message(progress, names)
    for side, error in zip("AB", progress.errors):
        if error is not None:
            return (
                f"Model {side} could not answer ({html.escape(error)}), so this battle cannot be judged. "
                "Start a new battle."
            )
    if progress.can_vote:
        return "Vote when you are ready" + ("." if progress.names_known else "; the names are shown after your vote.")
    return f"Voting opens once both answers have started and you have read them for {spec.arena_min_seconds:g} s."


def _reveal_message(progress: Progress, names: list[str]) -> str:
    text = f"Saved: **{progress.vote}**. Model A was **{names[0]}**, model B was **{names[1]}**."
    if progress.leaks:
        text += (
            f" Model {' and '.join(progress.leaks)} named itself, so your vote is kept but marked as an identity "
            "leak and left out of the leaderboard."
        )
    elif progress.names_known:
        text += " You knew the names from your earlier vote, so this one is kept but left out of the leaderboard."
    elif progress.early_vote:
        text += (
            " You voted before both answers had finished, so your vote counts for the leaderboard only "
            "(not as training data); the answers go on to their end."
        )
    if progress.can_follow_up:
        text += " Send a follow-up to go on with both models, or start a new battle."
    return text
