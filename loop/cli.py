"""`plumb loop VERB`: the whole loop, round after round: run it, see where it stands, write its report."""

VERBS = {
    "run": (
        "loop.run",
        "run (or resume) the loop's rounds from one config: candidates, judgments, export, reward, align, eval",
    ),
    "status": ("loop.status", "where a run stands: each round's stages, done, cut off or to do"),
    "report": ("loop.report", "write the run's report across rounds: report.md with plots, report.json"),
}


def main(argv: list[str], *, prog: str = "plumb loop") -> int:
    """Dispatch to a verb of the loop; a gate that stops the loop is exit status 1, a store error one line."""
    from collect.cli import run_store_verbs

    return run_store_verbs(VERBS, argv, prog=prog, description=__doc__)
