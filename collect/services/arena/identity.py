"""Whether an arena answer names its own model (an identity leak): the names a policy would call itself by."""

import re
from pathlib import Path

from collect.domain.campaign import PolicySpec


def names_own_model(text: str, policy: PolicySpec) -> bool:
    """Whether `text` names the policy or one of its aliases: case-insensitive, as whole words."""
    return any(
        re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE)
        for name in [policy.name, *(policy.aliases or default_aliases(policy))]
        if name.strip()
    )


def default_aliases(policy: PolicySpec) -> list[str]:
    """Names the policy's model would call itself by, when the campaign lists none.

    Models name their family ("I am Llama", "I'm Qwen"), not the full repo id, so a Hub id
    or GGUF file gives its name's family: its leading letters ("Qwen") and first word
    ("Qwen2.5"). "default" is SmolLM2. A local directory gives none: its name is whatever
    its trainer chose ("outputs/dpo", "model"), and matching it would flag ordinary words.
    A server (URL) gives the family of the model it was asked for (`generation['model']`).
    """
    model = policy.model
    if model == "default":
        return ["SmolLM", "SmolLM2"]
    if model.startswith(("http://", "https://")):
        model = str(policy.generation.get("model", ""))
    elif model.endswith(".gguf"):
        model = Path(model).stem
    elif Path(model).expanduser().exists() or model.startswith((".", "/", "~")):
        return []
    return _family(model.rsplit("/", 1)[-1])


def _family(repo_name: str) -> list[str]:
    first_word = re.split(r"[-_ ]", repo_name, maxsplit=1)[0]
    letters = re.match(r"[A-Za-z]*", first_word).group(0)
    # A family of one or two letters ("T5", "Yi") would match too many ordinary words to mean a leak.
    return sorted({name for name in (letters, first_word) if len(name) >= 3}, key=len)
