"""What `--help` and a misspelled flag tell a user: --config wherever a verb takes it, one list of export formats,
a "did you mean" for a flag that is close to a real one."""

import importlib

import pytest

from collect import serve_api
from collect.cli import main as collect_main
from collect.services.export.rows import FORMATS
from plumb.cli import STAGES


def verbs_taking_config():
    """(stage, verb, module) of every verb that parses a `--config` file."""
    for stage, (stage_module, _) in STAGES.items():
        for verb, (module_name, _) in importlib.import_module(stage_module).VERBS.items():
            module = importlib.import_module(module_name)
            if hasattr(module, "config_types"):
                yield stage, verb, module


def help_of(function, argv, capsys, **kwargs) -> str:
    with pytest.raises(SystemExit) as exited:
        function(argv, **kwargs)
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_every_verb_that_reads_a_config_shows_config_in_its_help(capsys):
    # Before: parse_config took --config off the command line unseen, so no --help named it.
    checked = []
    for stage, verb, module in verbs_taking_config():
        shown = help_of(module.cli, ["--help"], capsys, prog=f"plumb {stage} {verb}")
        assert "--config FILE" in shown, f"plumb {stage} {verb}"
        checked.append(f"{stage} {verb}")
    assert {"collect export", "collect quality", "reward train", "sft train", "align dpo"} <= set(checked)


def test_the_stage_and_export_help_list_the_same_formats(capsys):
    # Before: `plumb collect --help` said "pairwise, ranking, kto or sft", export --help six formats.
    from collect import export

    stage_help = " ".join(help_of(collect_main, ["--help"], capsys).split())
    export_help = " ".join(help_of(export.cli, ["--help"], capsys, prog="plumb collect export").split())
    listed = ", ".join(FORMATS)
    assert listed in stage_help and listed in export_help


def test_a_misspelled_flag_of_an_argparse_verb_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exited:
        serve_api.cli(["--prot", "8001"], prog="plumb collect serve-api")
    assert exited.value.code == 2
    assert "unrecognized argument: --prot (did you mean --port?)" in capsys.readouterr().err
