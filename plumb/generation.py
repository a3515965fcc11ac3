"""Generate responses from a policy: batched local transformers with its chat template, or an OpenAI-compatible server.

Every stage that samples from a policy (candidates for raters, best-of-n, evaluation)
goes through here, so the prompt formatting and the decoding settings mean the same
everywhere.
"""

from collections.abc import Callable

# A batch of prompts (message lists) -> one response text per prompt.
Generator = Callable[[list[list[dict]]], list[str]]
OPENAI_KEYS = {"max_new_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p", "seed": "seed"}


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


def load_generator(model_spec: str, generation: dict) -> Generator:
    """Load a policy (any spec `load_policy` takes) onto the GPU when there is one, and return its generator."""
    import torch

    from plumb.models import load_policy

    model, tokenizer = load_policy(model_spec, merge_adapter=True)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return local_generator(model, tokenizer, generation)


def openai_generator(url: str, generation: dict, *, client=None) -> Generator:
    """Chat completions from an OpenAI-compatible server at `url` (…/v1); `generation['model']` names its model."""
    import httpx

    client = client or httpx.Client(timeout=600)
    body = {"model": generation.get("model", "default")}
    body.update({OPENAI_KEYS[key]: value for key, value in generation.items() if key in OPENAI_KEYS})

    def generate(prompts: list[list[dict]]) -> list[str]:
        texts = []
        for messages in prompts:  # one request each: servers batch concurrent work themselves
            response = client.post(f"{url.rstrip('/')}/chat/completions", json={**body, "messages": messages})
            response.raise_for_status()
            texts.append(response.json()["choices"][0]["message"]["content"])
        return texts

    return generate


def generate_all(generator: Generator, prompts: list[list[dict]], *, batch_size: int = 8,
                 desc: str = "Generating") -> list[str]:
    """One response per prompt, in batches, with a progress bar."""
    from tqdm.auto import tqdm

    responses = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
        responses += generator(prompts[start : start + batch_size])
    return responses
