"""Streaming generation: a local model's answer piece by piece, and an OpenAI-compatible server's SSE stream.

The server is a real FastAPI app on 127.0.0.1 (uvicorn in a thread) that streams the tiny
model's own answer in the chat-completions chunk format, as vLLM or llama.cpp would.
"""

import json

import pytest
import torch

from plumb.generation import LoadedModels, load_on_device, local_generator, stream_local, stream_openai
from plumb.models import ModelLoadError
from tests.support.serving import serving

MESSAGES = [{"role": "user", "content": "Tell me about rain."}]


@pytest.fixture(scope="module")
def tiny(tiny_policy_dir):
    """(model, tokenizer) of the tiny random Llama."""
    return load_on_device(tiny_policy_dir)


def test_streamed_pieces_join_to_the_answer_generate_gives(tiny):
    model, tokenizer = tiny
    greedy = {"max_new_tokens": 12, "do_sample": False}
    pieces = list(stream_local(model, tokenizer, MESSAGES, greedy))
    assert "".join(pieces) == local_generator(model, tokenizer, greedy)([MESSAGES])[0]
    # Sampled text (seeded) has words rather than the random model's greedy newlines: more pieces to join.
    sampled = {"max_new_tokens": 20, "do_sample": True, "top_k": 0}
    torch.manual_seed(3)
    pieces = list(stream_local(model, tokenizer, MESSAGES, sampled))
    torch.manual_seed(3)
    assert "".join(pieces) == local_generator(model, tokenizer, sampled)([MESSAGES])[0]
    assert len(pieces) > 5 and all(pieces)


def test_closing_a_stream_stops_generation(tiny):
    model, tokenizer = tiny
    steps = []
    hook = model.register_forward_hook(lambda *args: steps.append(1))
    try:
        stream = stream_local(model, tokenizer, MESSAGES, {"max_new_tokens": 400, "do_sample": False})
        next(stream)
        stream.close()  # returns once the generation thread has stopped
        assert len(steps) < 400  # it stopped at the close, long before max_new_tokens
    finally:
        hook.remove()


def test_an_error_in_generation_reaches_the_reader(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="not_a_setting"):
        list(stream_local(model, tokenizer, MESSAGES, {"max_new_tokens": 4, "not_a_setting": 1}))


def chat_server(model, tokenizer, requests: list):
    """An OpenAI-compatible server whose `stream: true` answers are the tiny model's, one SSE chunk per piece."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        requests.append(body)
        if body["model"] == "missing":
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)
        if body["model"] == "garbled":  # a broken proxy or server: one good chunk, then data that is not JSON
            good = json.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
            return StreamingResponse(
                iter([f"data: {good}\n\n", "data: {'choices': oops\n\n"]), media_type="text/event-stream"
            )
        generation = {"max_new_tokens": body["max_tokens"], "do_sample": False}

        def events():
            yield ": a comment line, which clients skip\n\n"
            for piece in stream_local(model, tokenizer, body["messages"], generation):
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n"
            yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'length'}]})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def test_an_openai_compatible_server_streams_the_same_answer(tiny):
    model, tokenizer = tiny
    requests = []
    with serving(chat_server(model, tokenizer, requests)) as url:
        pieces = list(stream_openai(f"{url}/v1/", MESSAGES, {"model": "tiny", "max_new_tokens": 16}))
        with pytest.raises(ModelLoadError) as missing:  # the server's words, not an HTTP traceback
            list(stream_openai(f"{url}/v1", MESSAGES, {"model": "missing"}))
    greedy = local_generator(model, tokenizer, {"max_new_tokens": 16, "do_sample": False})([MESSAGES])[0]
    assert "".join(pieces) == greedy and len(pieces) > 1
    assert requests[0] == {"model": "tiny", "max_tokens": 16, "messages": MESSAGES, "stream": True}
    assert str(missing.value).startswith(f"{url}/v1 answered 404: no such model (check")


def test_a_chunk_that_is_not_json_names_the_server_and_the_data(tiny):
    model, tokenizer = tiny
    pieces = []
    with serving(chat_server(model, tokenizer, [])) as url:
        with pytest.raises(ValueError) as raised:
            pieces.extend(stream_openai(f"{url}/v1", MESSAGES, {"model": "garbled"}))
    assert str(raised.value) == f"{url}/v1: bad stream chunk \"{{'choices': oops\""
    assert not isinstance(raised.value, json.JSONDecodeError)  # whose message names neither server nor data
    assert pieces == ["Hi"]  # what came before the bad chunk was yielded


def test_policies_naming_one_model_share_one_loaded_copy(tiny_policy_dir):
    loaded = []

    def load(spec):
        loaded.append(spec)
        return load_on_device(spec)

    models = LoadedModels(load)
    first = "".join(models.stream(tiny_policy_dir, MESSAGES, {"max_new_tokens": 3, "do_sample": False}))
    "".join(  # a second policy (another temperature) streams from the same loaded model
        models.stream(tiny_policy_dir, MESSAGES, {"max_new_tokens": 3, "temperature": 1.5, "do_sample": True})
    )
    assert loaded == [tiny_policy_dir]  # two policies (two temperatures), one model in memory
    # Greedy streaming gives what one non-streamed greedy call of the same model gives.
    model, tokenizer = models.get(tiny_policy_dir)
    assert first == local_generator(model, tokenizer, {"max_new_tokens": 3, "do_sample": False})([MESSAGES])[0]
    assert loaded == [tiny_policy_dir]
    assert models.get(tiny_policy_dir)[0].device.type == ("cuda" if torch.cuda.is_available() else "cpu")
