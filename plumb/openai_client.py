"""Chat completions from an OpenAI-compatible server (vLLM, TGI, llama.cpp, OpenAI) for a policy named by URL.

Batch generation and streaming share one client setup (the `openai` package): the API key
from the environment variable the settings name, bounded retries with backoff on 429, 5xx
and connection errors (honouring Retry-After), a bounded number of concurrent requests.
Every setting is sent or refused by name, and a server's error becomes a `ServerError`
quoting the server's message and the URL.
"""

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from plumb.config import ConfigError
from plumb.models import ModelLoadError

# Decoding settings, by transformers' names, and the request-body fields that carry them. OpenAI's own API has no
# top_k, min_p or repetition_penalty; vLLM and TGI read them as extra body fields.
BODY_FIELDS = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
}
# How to reach the server, not what to generate: never sent as body fields.
CLIENT_DEFAULTS = {
    "model": "default",
    "api_key_env": "OPENAI_API_KEY",
    "max_concurrency": 8,
    "max_retries": 5,
    "timeout": 600.0,
}
ACCEPTED_KEYS = sorted({*BODY_FIELDS, "do_sample", *CLIENT_DEFAULTS})
# Sent when no key is set: local servers started without one ignore it; the client refuses to send none at all.
NO_KEY = "EMPTY"
CONNECT_TIMEOUT = 10.0
RETRIED_STATUSES = (408, 409, 429)  # and every 5xx: what the openai client retries


class ServerError(ModelLoadError):
    """An OpenAI-compatible server refused a request or stayed unreachable; the message quotes it and its URL."""


def check_settings(generation: dict, *, where: str) -> None:
    """Refuse, naming the key, a setting this client would not send or a client setting of the wrong type."""
    for key in generation:
        if key not in ACCEPTED_KEYS:
            raise ConfigError(
                f"{where}: generation key '{key}' cannot be sent to an OpenAI-compatible server; "
                f"accepted keys: {', '.join(ACCEPTED_KEYS)}"
            )
    checks = {
        "model": (lambda v: isinstance(v, str) and v != "", "a model name"),
        "api_key_env": (lambda v: isinstance(v, str) and v != "", "the name of an environment variable"),
        "max_concurrency": (lambda v: _is_int(v) and v >= 1, "an integer of at least 1"),
        "max_retries": (lambda v: _is_int(v) and v >= 0, "an integer, 0 or more"),
        "timeout": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, "seconds, above 0"),
        "do_sample": (lambda v: isinstance(v, bool), "true or false"),
    }
    for key, (ok, expected) in checks.items():
        if key in generation and not ok(generation[key]):
            raise ConfigError(f"{where}: generation key '{key}': expected {expected}, got {generation[key]!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def request_fields(generation: dict) -> dict:
    """The body fields carrying the decoding settings; `do_sample: false` is greedy, i.e. temperature 0."""
    fields = {BODY_FIELDS[key]: value for key, value in generation.items() if key in BODY_FIELDS}
    if generation.get("do_sample") is False:
        fields["temperature"] = 0.0  # greedy whatever temperature says, as transformers ignores it without sampling
    return fields


def api_key(generation: dict, *, where: str) -> str:
    """The key in the environment variable `api_key_env` names (OPENAI_API_KEY by default); never stored anywhere."""
    name = generation.get("api_key_env", CLIENT_DEFAULTS["api_key_env"])
    key = os.environ.get(name)
    if key:
        return key
    if "api_key_env" in generation:  # named on purpose: sending no key would only earn a 401 later
        raise ConfigError(f"{where}: generation key 'api_key_env' names {name}, which is not set in the environment")
    return NO_KEY


def make_client(url: str, generation: dict):
    """An `openai.OpenAI` client for the server at `url` (…/v1) with the key, retries and timeout of `generation`."""
    import openai

    setting = {**CLIENT_DEFAULTS, **generation}
    return openai.OpenAI(
        base_url=url.rstrip("/"),
        api_key=api_key(generation, where=url),
        max_retries=setting["max_retries"],
        timeout=openai.Timeout(setting["timeout"], connect=CONNECT_TIMEOUT),
    )


def openai_generator(url: str, generation: dict) -> Callable[[list[list[dict]]], list[str]]:
    """Chat completions from the server at `url` (…/v1), `max_concurrency` requests at a time, answers in prompt order.

    Settings are checked here, before any request; `generation['model']` names the server's model.
    """
    check_settings(generation, where=url)
    client = make_client(url, generation)
    model = generation.get("model", CLIENT_DEFAULTS["model"])
    fields = request_fields(generation)
    workers = generation.get("max_concurrency", CLIENT_DEFAULTS["max_concurrency"])

    def answer(messages: list[dict]) -> str:
        with server_errors(url):
            completion = client.chat.completions.create(model=model, messages=messages, extra_body=fields)
        return completion.choices[0].message.content or ""

    return lambda prompts: in_parallel(answer, prompts, workers=workers)


def in_parallel(function: Callable, items: list, *, workers: int) -> list:
    """`[function(item) for item in items]`, at most `workers` at a time; the first error is raised, the rest unsent."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="plumb-openai") as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # the batch fails whole (nothing committed): send no more
            raise


def stream_openai(url: str, messages: list[dict], generation: dict) -> Iterator[str]:
    """Yield the answer of the server at `url` (…/v1) as it streams (`stream: true`, SSE chunks), retried as above."""
    check_settings(generation, where=url)
    client = make_client(url, generation)
    model = generation.get("model", CLIENT_DEFAULTS["model"])
    try:
        with server_errors(url):
            stream = client.chat.completions.create(
                model=model, messages=messages, stream=True, extra_body=request_fields(generation)
            )
        with stream:  # closing the generator early (a vote, a closed page) closes the response
            yield from _pieces(url, stream)
    finally:
        client.close()


def _pieces(url: str, stream) -> Iterator[str]:
    try:
        with server_errors(url):
            for chunk in stream:
                for choice in chunk.choices or []:
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
    except json.JSONDecodeError as error:  # a bare decode error would say neither which server nor what data
        raise ValueError(f"{url}: bad stream chunk {error.doc[:80]!r}") from error


@contextmanager
def server_errors(url: str):
    """Turn the openai client's errors (once its retries are spent) into a `ServerError` quoting the server."""
    import openai

    try:
        yield
    except openai.APIStatusError as error:
        raise ServerError(_status_message(url, error)) from error
    except openai.APIConnectionError as error:
        cause = error.__cause__ or error
        raise ServerError(f"could not reach {url}: {cause}{_retries(error)}") from error
    except openai.APIError as error:  # an error event inside a stream
        raise ServerError(f"{url} reported an error: {error.message}") from error


def _status_message(url: str, error) -> str:
    status = error.status_code
    text = f"{url} answered {status}: {_server_message(error)}"
    if status in (401, 403):
        text += " (set OPENAI_API_KEY, or the variable the policy's generation key api_key_env names)"
    elif status == 404:
        text += " (check the policy's URL, which ends in /v1, and its generation key 'model')"
    elif status in RETRIED_STATUSES or status >= 500:
        text += _retries(error)
    return text


def _server_message(error) -> str:
    """The server's own words: OpenAI's and vLLM's `message`, TGI's `error` string, else the start of the body."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, str) and body:
        return body[:500]
    try:
        return error.response.text[:500] or error.message
    except Exception:  # a streamed response not read: the client's summary is all there is
        return error.message


def _retries(error) -> str:
    # The openai client numbers each attempt in this header; how many retries were spent explains a slow failure.
    taken = error.request.headers.get("x-stainless-retry-count") if error.request is not None else None
    return f" (after {taken} retries)" if taken and taken != "0" else ""
