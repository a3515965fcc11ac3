"""The OpenAI-compatible client against a real stub server on 127.0.0.1 that fails on purpose.

The stub (tests/support/openai_stub.py) records every request's headers and body, answers
503 before it succeeds, 401 without the right key and 404 for a model it does not serve.
"""

import socket

import pytest

from plumb.config import ConfigError
from plumb.generation import openai_generator, stream_openai
from plumb.models import ModelLoadError
from tests.support.openai_stub import OpenAIStub
from tests.support.serving import serving


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def no_key(monkeypatch):
    """No OPENAI_API_KEY from the machine running the tests."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_the_key_comes_from_openai_api_key_or_the_variable_api_key_env_names(monkeypatch, no_key):
    stub = OpenAIStub(api_key="sk-first")
    with serving(stub.app()) as url:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-first")
        assert openai_generator(f"{url}/v1", {"model": "m"})([ask("hi")]) == ["echo hi"]
        stub.api_key = "sk-second"
        monkeypatch.setenv("PLUMB_TEST_SERVER_KEY", "sk-second")
        generate = openai_generator(f"{url}/v1", {"model": "m", "api_key_env": "PLUMB_TEST_SERVER_KEY"})
        assert generate([ask("again")]) == ["echo again"]
        # A variable named on purpose but not set is refused at once, not sent as no key at all.
        with pytest.raises(ConfigError, match="'api_key_env' names PLUMB_TEST_UNSET, which is not set"):
            openai_generator(f"{url}/v1", {"api_key_env": "PLUMB_TEST_UNSET"})
    assert [r["headers"]["authorization"] for r in stub.requests] == ["Bearer sk-first", "Bearer sk-second"]


def test_a_run_survives_two_503s_and_honours_retry_after(no_key):
    stub = OpenAIStub(failures=2, retry_after="1")
    with serving(stub.app()) as url:
        answers = openai_generator(f"{url}/v1", {"model": "m", "max_concurrency": 1})([ask("one"), ask("two")])
    assert answers == ["echo one", "echo two"]
    assert [r["body"]["messages"] for r in stub.requests] == [ask("one")] * 3 + [ask("two")]  # 503, 503, answer
    # Retry-After: 1 is waited out each time; the client's own backoff would be 0.5 s, then 1 s at most.
    times = [r["time"] for r in stub.requests[:3]]
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9


def test_retries_are_bounded_and_the_last_503_is_quoted(no_key):
    stub = OpenAIStub(failures=3, retry_after="0.05")
    with serving(stub.app()) as url:
        with pytest.raises(ModelLoadError) as raised:
            openai_generator(f"{url}/v1", {"model": "m", "max_retries": 2})([ask("hi")])
    assert len(stub.requests) == 3  # the first try and two retries
    assert str(raised.value) == f"{url}/v1 answered 503: The server is overloaded. (after 2 retries)"


def test_requests_overlap_up_to_max_concurrency_and_answers_keep_prompt_order(no_key):
    # The first four answers wait until four requests are in flight; p0's answer then comes last.
    stub = OpenAIStub(hold_until=4, delays={"p0": 0.3})
    prompts = [ask(f"p{i}") for i in range(8)]
    with serving(stub.app()) as url:
        answers = openai_generator(f"{url}/v1", {"model": "m", "max_concurrency": 4})(prompts)
    assert answers == [f"echo p{i}" for i in range(8)]
    assert stub.max_in_flight == 4  # overlapping, and never more than max_concurrency


def test_every_setting_is_sent_and_do_sample_false_is_greedy(no_key):
    stub = OpenAIStub()
    sampled = {"max_new_tokens": 7, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05}
    sampled |= {"repetition_penalty": 1.1, "seed": 3, "do_sample": True}
    client = {"max_concurrency": 2, "max_retries": 1, "timeout": 30}  # how to reach the server: never in the body
    with serving(stub.app()) as url:
        openai_generator(f"{url}/v1", {"model": "m", **sampled, **client})([ask("hi")])
        openai_generator(f"{url}/v1", {"model": "m", "do_sample": False, "temperature": 0.7})([ask("hi")])
    assert stub.requests[0]["body"] == {
        "model": "m",
        "messages": ask("hi"),
        "max_tokens": 7,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "seed": 3,
    }
    assert stub.requests[1]["body"] == {"model": "m", "messages": ask("hi"), "temperature": 0.0}


def test_a_setting_the_server_would_not_get_is_refused_before_any_request(no_key):
    stub = OpenAIStub()
    with serving(stub.app()) as url:
        with pytest.raises(ConfigError) as raised:
            openai_generator(f"{url}/v1", {"model": "m", "num_beams": 4})([ask("hi")])
        with pytest.raises(ConfigError, match="'max_concurrency': expected an integer of at least 1, got 0"):
            openai_generator(f"{url}/v1", {"max_concurrency": 0})([ask("hi")])
        with pytest.raises(ConfigError, match="'num_beams'"):
            list(stream_openai(f"{url}/v1", ask("hi"), {"num_beams": 4}))
    assert "generation key 'num_beams' cannot be sent" in str(raised.value)
    assert "accepted keys: api_key_env, do_sample, max_concurrency, max_new_tokens" in str(raised.value)
    assert stub.requests == []


def test_401_404_and_no_server_are_errors_quoting_the_server_and_the_url(monkeypatch):
    stub = OpenAIStub(api_key="sk-right", models=("m",))
    with serving(stub.app()) as url:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        with pytest.raises(ModelLoadError) as unauthorized:
            openai_generator(f"{url}/v1", {"model": "m"})([ask("hi")])
        monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
        with pytest.raises(ModelLoadError) as missing:
            openai_generator(f"{url}/v1", {"model": "nope"})([ask("hi")])
        with pytest.raises(ModelLoadError) as streamed:
            list(stream_openai(f"{url}/v1", ask("hi"), {"model": "nope"}))
    assert str(unauthorized.value).startswith(f"{url}/v1 answered 401: Incorrect API key provided. (set OPENAI_API_KEY")
    assert str(missing.value).startswith(f"{url}/v1 answered 404: The model `nope` does not exist. (check")
    assert str(streamed.value) == str(missing.value)
    assert len(stub.requests) == 3  # 401 and 404 are not retried
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        with pytest.raises(
            ModelLoadError, match=f"could not reach {dead}: .*Connection refused.* \\(after 1 retries\\)"
        ):
            openai_generator(dead, {"max_retries": 1})([ask("hi")])


def test_streaming_shares_the_key_the_retries_and_the_settings(monkeypatch):
    stub = OpenAIStub(api_key="sk-stream", failures=1, retry_after="0.05")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-stream")
    with serving(stub.app()) as url:
        pieces = list(stream_openai(f"{url}/v1", ask("hi there"), {"model": "m", "top_k": 5, "do_sample": False}))
    assert pieces == ["echo", " hi", " there"]
    assert len(stub.requests) == 2  # one 503, then the stream
    assert stub.requests[1]["headers"]["authorization"] == "Bearer sk-stream"
    body = stub.requests[1]["body"]
    assert body == {"model": "m", "messages": ask("hi there"), "stream": True, "top_k": 5, "temperature": 0.0}
