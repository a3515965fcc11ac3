"""`plumb collect generate`: candidates from local transformers and from an OpenAI-compatible server, resumably."""

import json

import httpx
from sqlalchemy import func, select

from collect import generate, import_prompts
from collect.init import main as init_main
from collect.store import Candidate, Task, open_store
from plumb.generation import openai_generator


def write_campaign(tmp_path, policies: str):
    rows = tmp_path / "prompts.jsonl"
    rows.write_text(
        "".join(json.dumps({"prompt": f"Say something about {topic}."}) + "\n" for topic in ("cats", "rain", "tea"))
    )
    path = tmp_path / "campaign.yaml"
    path.write_text(f"name: gen\nprompts: {rows}\npolicies:\n{policies}")
    return str(path)


def candidate_settings(db):
    with open_store(db)() as session:
        return session.scalars(select(Candidate.settings).order_by(Candidate.id)).all()


def test_local_generation_is_batched_recorded_and_resumable(tmp_path, tiny_policy_dir):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    generation = "{max_new_tokens: 4, do_sample: false}"
    policies = "".join(f"  - {{name: {name}, model: {tiny_policy_dir}, generation: {generation}}}\n" for name in "ab")
    import_prompts.main(write_campaign(tmp_path, policies), db=db)
    first = generate.main("gen", policies=["a"], batch_size=2, db=db)
    assert first == {"candidates": {"a": 3}, "new_tasks": 0}  # b has not answered: no task can be built yet
    second = generate.main("gen", batch_size=2, db=db)
    assert second == {"candidates": {"a": 0, "b": 3}, "new_tasks": 3}  # a's answers are not generated again
    settings = candidate_settings(db)
    assert settings[0] == {"backend": "transformers", "model": tiny_policy_dir, "max_new_tokens": 4, "do_sample": False}
    with open_store(db)() as session:
        completions = session.scalars(select(Candidate.completion)).all()
        assert all(c[0]["role"] == "assistant" and isinstance(c[0]["content"], str) for c in completions)
        assert session.scalar(select(func.count(Task.id))) == 3


def test_an_openai_compatible_server_by_url(tmp_path):
    requests = []

    def server(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append((str(request.url), body))
        reply = {"role": "assistant", "content": f"echo {body['messages'][-1]['content']}"}
        return httpx.Response(200, json={"choices": [{"message": reply}]})

    client = httpx.Client(transport=httpx.MockTransport(server))
    generation = {"model": "smol", "max_new_tokens": 16, "temperature": 0.5}
    answer = openai_generator("http://127.0.0.1:8001/v1/", generation, client=client)
    assert answer([[{"role": "user", "content": "hi"}]]) == ["echo hi"]
    url, body = requests[0]
    assert url == "http://127.0.0.1:8001/v1/chat/completions"
    assert body == {
        "model": "smol",
        "max_tokens": 16,
        "temperature": 0.5,
        "messages": [{"role": "user", "content": "hi"}],
    }

    db = str(tmp_path / "c.sqlite")
    init_main(db)
    import_prompts.main(
        write_campaign(
            tmp_path,
            "  - {name: served, model: 'http://127.0.0.1:8001/v1'}\n"
            "  - {name: other, model: 'http://127.0.0.1:8002/v1'}\n",
        ),
        db=db,
    )
    fake = openai_generator("http://127.0.0.1:8001/v1", {}, client=client)
    made = generate.main("gen", db=db, generators={"served": fake, "other": fake})
    assert made == {"candidates": {"served": 3, "other": 3}, "new_tasks": 3}
    assert candidate_settings(db)[0] == {"backend": "openai", "model": "http://127.0.0.1:8001/v1"}


def test_a_raters_arena_prompt_is_not_answered_again_by_the_other_policies(tmp_path, tiny_policy_dir):
    from collect.store import add_candidate, add_prompt, campaign_by_name, ensure_policy

    db = str(tmp_path / "c.sqlite")
    init_main(db)
    generation = "{max_new_tokens: 2, do_sample: false}"
    policies = "".join(f"  - {{name: {name}, model: {tiny_policy_dir}, generation: {generation}}}\n" for name in "abc")
    import_prompts.main(write_campaign(tmp_path, policies), db=db)
    sessions = open_store(db)
    with sessions.begin() as session:  # a battle of a and b, as the arena stores it
        campaign = campaign_by_name(session=session, name="gen")
        prompt = add_prompt(
            session=session, campaign=campaign, external_id="arena-1", messages=[{"role": "user", "content": "Hi?"}]
        )
        ids = [
            add_candidate(
                session=session,
                prompt=prompt,
                policy=ensure_policy(session=session, campaign=campaign, name=name),
                completion=[{"role": "assistant", "content": "Hello."}],
            ).id
            for name in "ab"
        ]
        session.add(
            Task(
                campaign_id=campaign.id,
                prompt_id=prompt.id,
                kind="pairwise",
                source="arena",
                candidate_ids=ids,
                target_overlap=1,
            )
        )
    made = generate.main("gen", batch_size=4, db=db)
    assert made["candidates"] == {"a": 3, "b": 3, "c": 3}  # the three imported prompts, not the arena's
