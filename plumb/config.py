"""One YAML file per run, parsed into TRL's own config dataclasses (the same keys as `trl sft|dpo|reward`).

Precedence is TRL's: dataclass defaults, then `--config FILE`, then command-line flags.
Unlike a bare `TrlParser`, every value from the file is type-checked, an unknown key is
an error naming the key and the file, and bf16 is switched off on a machine without an
accelerator instead of crashing.
"""

import argparse
import dataclasses
import difflib
import enum
import inspect
import json
import logging
import os
import sys
import typing
from pathlib import Path

import yaml

from plumb.paths import data_dir, write_whole

logger = logging.getLogger(__name__)

RESOLVED_CONFIG = "plumb_config.yaml"
PRECISION_KEYS = ("bf16", "fp16")
FLAGS_CACHE = "cli-flags.json"  # in the data dir: each verb's flags, so a typo fails before torch is imported
CONFIG_HELP = "a YAML file of keys (the flags below without --); flags given on the command line override it"
# The keys `peek_value` read during this parse: a verb whose dataclasses depend on them has one flag set per value.
_peeked: dict[str, str] = {}


class ConfigError(ValueError):
    """A config file or flag is wrong; the message names the file (or command line) and the key."""


def parse_config(dataclass_types, argv: list[str] | None = None, *, prog: str | None = None):
    """Parse `--config FILE` and flags into instances of `dataclass_types`, in that order."""
    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, argv = _pop_config_flag(argv)
    parser = TrlParser(dataclass_types, prog=prog)
    # Taken off argv above; declared only so that --help shows it (SUPPRESS: no attribute, no extra dataclass).
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP)
    parser.error = _raise_config_error  # argparse would print and exit; we want a named error
    if prog:
        remember_flags(prog, option_strings(parser), dataclass_types, peeked=dict(_peeked))
    _peeked.clear()
    # First action per key: a bool that defaults to True also gets a `--no_KEY` action with the same dest.
    actions = {}
    for action in parser._actions:
        if action.dest != "help":
            actions.setdefault(action.dest, action)

    values = read_yaml(config_path) if config_path else {}
    for key, value in (values.pop("env", None) or {}).items():
        os.environ[key] = str(value)
    where = str(config_path)
    list_fields = _fields_accepting_lists(dataclass_types)
    for key, value in values.items():
        if key not in actions:
            raise ConfigError(f"{where}: unknown key '{key}'{_suggest(key, actions)}")
        value = convert_value(actions[key], value, where=f"{where}: key '{key}'", list_ok=key in list_fields)
        parser.set_defaults(**{key: value})  # on every action of the key, or argparse keeps the first default
        actions[key].required = False
    _default_precision_off_without_accelerator(parser, actions, values, argv, where)

    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except ConfigError as error:
        raise ConfigError(f"command line: {error}") from None
    except (ValueError, TypeError) as error:  # a dataclass __post_init__ refused a value
        raise ConfigError(f"{where if config_path else 'command line'}: {error}") from error
    if remaining:
        flags = [arg for arg in remaining if arg.startswith("-")] or remaining
        raise ConfigError(f"command line: {unknown_flag_message(flags[0], option_strings(parser))}")
    return tuple(parsed)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every `--flag` the parser knows (both spellings, `--no_KEY` too)."""
    return [option for action in parser._actions for option in action.option_strings if option.startswith("--")]


def unknown_flag_message(flag: str, known: list[str]) -> str:
    """'unrecognized argument: --x (did you mean --y?)', with the closest known flag when one is close."""
    close = difflib.get_close_matches(flag.split("=", 1)[0], known, n=1)
    return f"unrecognized argument: {flag}" + (f" (did you mean {close[0]}?)" if close else "")


class SuggestingArgumentParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose error for an unknown flag names the closest known one, as parse_config's does."""

    def parse_args(self, args=None, namespace=None):
        """Parse like argparse; an unknown flag is an error with a "did you mean"."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unknown_flag_message(extras[0], option_strings(self)))
        return namespace


def read_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; an unreadable file or a non-mapping is a `ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: must be a YAML mapping of keys to values, got {type(values).__name__}")
    return values


def convert_value(action: argparse.Action, value, *, where: str, list_ok: bool = False):
    """Check and convert one YAML value with the same rules the command line uses."""
    if value is None or isinstance(value, dict) or action.type is None:
        return value
    if action.nargs in ("+", "*") or (list_ok and isinstance(value, list)):
        items = value if isinstance(value, list) else [value]
        return [_convert_scalar(action, item, where) for item in items]
    if isinstance(value, list):
        raise ConfigError(f"{where}: expected a single value, got a list")
    return _convert_scalar(action, value, where)


def _fields_accepting_lists(dataclass_types) -> set[str]:
    # argparse sees `report_to: str | list[str]` as a plain str; the dataclass itself takes a list.
    # Read the annotations, not Field.type, which HfArgumentParser rewrites in place.
    return {name for dc in dataclass_types for name, hint in typing.get_type_hints(dc).items() if "list" in str(hint)}


def _convert_scalar(action, value, where):
    if action.type is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    try:
        converted = action.type(value if isinstance(value, str) else _yaml_scalar_text(value))
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise ConfigError(f"{where}: invalid value {value!r} ({error})") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(str(getattr(c, "value", c)) for c in action.choices)
        raise ConfigError(f"{where}: invalid value {value!r}; choose one of: {choices}")
    return converted


def _yaml_scalar_text(value) -> str:
    # str(True) is "True", which string_to_bool accepts; floats keep full precision in repr.
    return repr(value) if isinstance(value, float) else str(value)


def _pop_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    for i, arg in enumerate(argv):
        if arg == "--config":
            if i + 1 >= len(argv):
                raise ConfigError("command line: --config needs a file")
            return argv[i + 1], argv[:i] + argv[i + 2 :]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
    return None, argv


def _raise_config_error(message: str):
    raise ConfigError(message)


def _suggest(key: str, actions) -> str:
    close = difflib.get_close_matches(key, list(actions), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def has_accelerator() -> bool:
    """True when torch sees a CUDA, MPS or XPU device."""
    import torch

    if torch.cuda.is_available():
        return True
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return True
    return hasattr(torch, "xpu") and torch.xpu.is_available()


def _default_precision_off_without_accelerator(parser, actions, file_values, argv, where):
    # TRL defaults bf16 to True, which transformers refuses on a CPU-only machine.
    present = [k for k in PRECISION_KEYS if k in actions]
    if not present or has_accelerator():
        return
    for key in present:
        if file_values.get(key) is True:
            raise ConfigError(
                f"{where}: key '{key}': mixed precision needs a GPU and none was found; "
                f"remove the key (Plumb then picks what the machine supports) or set it to false"
            )
        given = key in file_values or any(a == f"--{key}" or a.startswith(f"--{key}=") for a in argv)
        if not given:
            parser.set_defaults(**{key: False})
    logger.info("No GPU found: mixed precision (bf16/fp16) is off.")


def resolved_config(*configs) -> dict:
    """One flat mapping of every parsed field, as a YAML `--config` file accepts it back."""
    flat = {}
    for config in configs:
        for field in dataclasses.fields(config):
            if field.name.startswith("_") or not field.init:
                continue
            flat[field.name] = _plain(getattr(config, field.name))
    return flat


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def save_resolved_config(output_dir: str | os.PathLike, *configs) -> Path:
    """Write the run's resolved config into its output directory, so it can be re-run with `--config`."""
    path = Path(output_dir) / RESOLVED_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(resolved_config(*configs), sort_keys=False))
    return path


def peek_value(argv: list[str], key: str, default=None):
    """The value of one key before full parsing (flag, else --config file, else `default`), to choose dataclasses."""
    value = _peek(argv, key, default)
    _peeked[key] = str(value)
    return value


def _peek(argv: list[str], key: str, default=None):
    config_path, rest = _pop_config_flag(list(argv))
    for i, arg in enumerate(rest):
        if arg == f"--{key}" and i + 1 < len(rest):
            return rest[i + 1]
        if arg.startswith(f"--{key}="):
            return arg.split("=", 1)[1]
    return read_yaml(config_path).get(key, default) if config_path else default


# Flags checked before the stage is imported


def remember_flags(prog: str, flags: list[str], dataclass_types, *, peeked: dict[str, str]) -> None:
    """Record the flags of `prog` in the data dir, with the state of the files that define them, for `check_flags`.

    `peeked`: the values of keys that chose the dataclasses (`peek_value`); each value has its own record.
    """
    entries = _read_flags_cache()
    entries[_cache_key(prog, peeked)] = {"flags": sorted(set(flags)), "sources": _source_stamps(dataclass_types)}
    try:
        write_whole(_flags_cache_path(), json.dumps(entries))  # parallel runs each write a complete file
    except OSError:
        pass  # a read-only data dir only costs the early check


def check_flags(prog: str, argv: list[str]) -> None:
    """Raise `ConfigError` for a flag `prog` does not know, judged from the flags its last parse recorded.

    Called before the stage is imported, so a typo costs no torch import. Silent when nothing current is
    recorded: the full parse then judges.
    """
    if any(arg in ("-h", "--help") for arg in argv):
        return
    entry = _current_entry(prog, argv, _read_flags_cache())
    if entry is None:
        return
    known = entry["flags"]
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag != "--config" and not any(k.startswith(flag) for k in known):
            raise ConfigError(f"command line: {unknown_flag_message(arg, known)}")


def _current_entry(prog: str, argv: list[str], entries: dict) -> dict | None:
    # A verb that chose its dataclasses by peeking at a key has one entry per value of that key.
    for key, entry in entries.items():
        name, _, peeked = key.partition("\t")
        if name != prog:
            continue
        wanted = json.loads(peeked or "{}")
        try:
            values = {k: str(_peek(argv, k)) for k in wanted}
        except ConfigError:
            return None
        if values == wanted and entry["sources"] == _stamps_of(entry["sources"]):
            return entry
    return None


def _cache_key(prog: str, peeked: dict) -> str:
    return f"{prog}\t{json.dumps(peeked, sort_keys=True)}"


def _source_stamps(dataclass_types) -> dict[str, list[int]]:
    classes = [cls for dataclass_type in dataclass_types for cls in dataclass_type.__mro__]
    files = {inspect.getsourcefile(cls) for cls in classes if dataclasses.is_dataclass(cls)}
    return _stamps_of(sorted(f for f in files if f))


def _stamps_of(files) -> dict[str, list[int]]:
    # A changed or upgraded definition (new TRL, an edited config class) makes the record stale.
    stamps = {}
    for file in files:
        try:
            stat = os.stat(file)
        except OSError:
            stamps[file] = [-1, -1]
            continue
        stamps[file] = [stat.st_mtime_ns, stat.st_size]
    return stamps


def _flags_cache_path() -> Path:
    return data_dir() / FLAGS_CACHE


def _read_flags_cache() -> dict:
    try:
        entries = json.loads(_flags_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}
