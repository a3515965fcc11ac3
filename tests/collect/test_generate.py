"""`plumb collect generate`: candidates from local transformers and from an OpenAI-compatible server, resumably.

The server is a stub on 127.0.0.1 (tests/support/openai_stub.py) that fails on purpose.
"""

import json

from sqlalchemy import func, select

from collect import generate, import_prompts
from collect.init import main as init_main
from collect.store import Candidate, Policy, Prompt, Task, open_store
from plumb.cli import main as plumb_main
from tests.support.openai_stub import OpenAIStub
from tests.support.serving import serving


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


def stored_candidates(db) -> list[tuple]:
    with open_store(db)() as session:
        query = (
            select(Prompt.external_id, Policy.name, Candidate.completion, Candidate.settings)
            .join(Candidate, Candidate.prompt_id == Prompt.id)
            .join(Policy, Policy.id == Candidate.policy_id)
            .order_by(Prompt.external_id, Policy.name)
        )
        return [tuple(json.dumps(value, sort_keys=True) for value in row) for row in session.execute(query)]


def test_generated_candidates_written_to_a_file_import_elsewhere_as_they_were(tmp_path, tiny_policy_dir):
    db, elsewhere, shipped = str(tmp_path / "c.sqlite"), str(tmp_path / "d.sqlite"), tmp_path / "shipped.jsonl"
    init_main(db)
    generation = "{max_new_tokens: 4, do_sample: false}"
    policies = "".join(f"  - {{name: {name}, model: {tiny_policy_dir}, generation: {generation}}}\n" for name in "ab")
    campaign = write_campaign(tmp_path, policies)
    import_prompts.main(campaign, db=db)
    assert plumb_main(["collect", "generate", "--campaign", "gen", "--db", db, "--to", str(shipped)]) == 0
    assert len(shipped.read_text().splitlines()) == 3
    init_main(elsewhere)
    counts = import_prompts.main(campaign, source=str(shipped), db=elsewhere)
    assert (counts["candidates"], counts["tasks"]) == (6, 3)
    copied = stored_candidates(elsewhere)
    assert len(copied) == 6 and [row[:3] for row in copied] == [row[:3] for row in stored_candidates(db)]
    for (*_, made), (*_, imported) in zip(stored_candidates(db), copied):  # how each was made, and that it came in
        assert json.loads(imported) == {**json.loads(made), "source": "import"}


def test_an_openai_compatible_server_by_url(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    stub = OpenAIStub(api_key="sk-test", models=("smol",), failures=1, retry_after="0.05")
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    with serving(stub.app()) as url:
        generation = "{model: smol, max_new_tokens: 16, top_k: 5, max_concurrency: 3}"
        import_prompts.main(
            write_campaign(tmp_path, f"  - {{name: served, model: '{url}/v1', generation: {generation}}}\n"), db=db
        )
        made = generate.main("gen", db=db)
    assert made == {"candidates": {"served": 3}, "new_tasks": 0}  # one policy: no pair to judge
    with open_store(db)() as session:
        texts = session.scalars(select(Candidate.completion).order_by(Candidate.prompt_id)).all()
    assert [t[0]["content"] for t in texts] == [
        f"echo Say something about {topic}." for topic in ("cats", "rain", "tea")
    ]
    assert candidate_settings(db)[0] == {
        "backend": "openai",
        "model": "smol",  # the server's model name (the generation key) wins over the policy's URL
        "max_new_tokens": 16,
        "top_k": 5,
        "max_concurrency": 3,
    }
    answered = [r for r in stub.requests if r["headers"]["authorization"] == "Bearer sk-test"]
    assert len(answered) == 4  # one 503 retried, then the three prompts
    assert all(r["body"]["top_k"] == 5 and r["body"]["max_tokens"] == 16 for r in answered)


def url_campaign(tmp_path, db, url, *generations: str) -> None:
    """A campaign whose policies p0, p1... are all served at `url`, each with its generation settings."""
    init_main(db)
    policies = "".join(f"  - {{name: p{i}, model: '{url}/v1', generation: {g}}}\n" for i, g in enumerate(generations))
    import_prompts.main(write_campaign(tmp_path, policies), db=db)


def test_the_cli_quotes_a_401_or_404_from_the_server_without_a_traceback(tmp_path, monkeypatch, capsys):
    stub = OpenAIStub(api_key="sk-right", models=("smol",))
    db = str(tmp_path / "c.sqlite")
    with serving(stub.app()) as url:
        url_campaign(tmp_path, db, url, "{model: smol}")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        unauthorized = plumb_main(["collect", "generate", "--campaign", "gen", "--db", db])
        refused = capsys.readouterr().err
        monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
        stub.models = ("other",)
        missing = plumb_main(["collect", "generate", "--campaign", "gen", "--db", db])
        not_found = capsys.readouterr().err
    assert unauthorized == missing == 2
    assert f"plumb collect generate: error: {url}/v1 answered 401: Incorrect API key provided." in refused
    assert f"plumb collect generate: error: {url}/v1 answered 404: The model `smol` does not exist." in not_found
    assert "Traceback" not in refused + not_found


def test_the_cli_refuses_an_unknown_setting_before_any_policy_sends_a_request(tmp_path, capsys):
    stub = OpenAIStub()
    db = str(tmp_path / "c.sqlite")
    with serving(stub.app()) as url:
        url_campaign(tmp_path, db, url, "{max_new_tokens: 8}", "{max_new_tokens: 8, num_beams: 4}")
        status = plumb_main(["collect", "generate", "--campaign", "gen", "--db", db])
    error = capsys.readouterr().err
    assert status == 2
    assert f"policy 'p1' ({url}/v1): generation key 'num_beams' cannot be sent" in error
    assert "accepted keys: api_key_env, do_sample, max_concurrency, max_new_tokens, max_retries" in error
    assert stub.requests == []  # p0, whose settings are fine, did not start either


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
