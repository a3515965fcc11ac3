"""Generate responses from a policy: batched local transformers with its chat template, or an OpenAI-compatible server.

Every stage that samples from a policy (candidates for raters, best-of-n, evaluation,
arena battles) goes through here, so the prompt formatting and the decoding settings mean
the same everywhere. Arena battles stream: `stream_local` and `stream_openai` yield the
answer's text piece by piece, and `LoadedModels` loads each local model once for every
policy that names it. The OpenAI-compatible client (key, retries, concurrency) lives in
`plumb.openai_client`.
"""

import threading
from collections.abc import Callable, Iterator

# Re-exported: every stage imports its generators from here, whichever backend serves them.
from plumb.openai_client import openai_generator as openai_generator
from plumb.openai_client import stream_openai

# A batch of prompts (message lists) -> one response text per prompt.
Generator = Callable[[list[list[dict]]], list[str]]


def local_generator(model, tokenizer, generation: dict) -> Generator:
    """A function from prompts (message lists) to one response each, using `model.generate(**generation)`.

    Left padding so every answer starts at the same position in the batch.
    """
    import torch

    tokenizer.padding_side = "left"

    def generate(prompts: list[list[dict]]) -> list[str]:
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            output = model.generate(**batch, pad_token_id=tokenizer.pad_token_id, **generation)
        return tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)

    return generate


def load_on_device(model_spec: str):
    """(model, tokenizer) of a policy (any spec `load_policy` takes), on the GPU when there is one, in eval mode."""
    import torch

    from plumb.models import load_policy

    model, tokenizer = load_policy(model_spec, merge_adapter=True)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return model, tokenizer


def load_generator(model_spec: str, generation: dict) -> Generator:
    """Load a policy (any spec `load_policy` takes) onto the GPU when there is one, and return its generator."""
    return local_generator(*load_on_device(model_spec), generation)


def generate_all(
    generator: Generator, prompts: list[list[dict]], *, batch_size: int = 8, desc: str = "Generating"
) -> list[str]:
    """One response per prompt, in batches, with a progress bar."""
    from tqdm.auto import tqdm

    responses = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
        responses += generator(prompts[start : start + batch_size])
    return responses


def stream_local(model, tokenizer, messages: list[dict], generation: dict) -> Iterator[str]:
    """Yield the answer to one prompt (a message list) as text pieces while `model.generate(**generation)` runs.

    Generation runs in a thread feeding transformers' `TextIteratorStreamer`; closing the
    iterator early (a vote, a closed page) stops generation at the next token. An error in
    generation is raised here, after the pieces that came before it.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    stop = threading.Event()

    class _StopWhenClosed(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure = []

    def run() -> None:
        try:
            with torch.no_grad():
                model.generate(
                    **inputs,
                    pad_token_id=tokenizer.pad_token_id,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopWhenClosed()]),
                    **generation,
                )
        except Exception as error:  # handed to the reader, who would otherwise wait for text forever
            failure.append(error)
            streamer.end()

    thread = threading.Thread(target=run, name="plumb-stream-local", daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]


def is_url(model_spec: str) -> bool:
    """Whether a policy's model is an OpenAI-compatible server (http(s)://…/v1) rather than a model to load."""
    return model_spec.startswith(("http://", "https://"))


class LoadedModels:
    """Local models loaded on first use and kept, one per model spec, shared by every policy that names it.

    Two policies of one model (say, two temperatures) then cost one copy in memory. Loading
    is serialized, so two battles starting at once load a model once. Thread-safe.
    """

    def __init__(self, load: Callable[[str], tuple] = load_on_device):
        self._load = load
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def get(self, model_spec: str) -> tuple:
        """(model, tokenizer) for `model_spec`, loaded now if this is its first use."""
        with self._lock:
            if model_spec not in self._models:
                self._models[model_spec] = self._load(model_spec)
            return self._models[model_spec]

    def stream(self, model_spec: str, messages: list[dict], generation: dict) -> Iterator[str]:
        """Stream one answer from a URL's server or from the loaded local model."""
        if is_url(model_spec):
            return stream_openai(model_spec, messages, generation)
        return stream_local(*self.get(model_spec), messages, generation)
