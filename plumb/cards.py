"""Model and dataset cards: a README.md with Hub metadata that says what was trained on what, and how well."""

from pathlib import Path

import yaml

from plumb import __version__


def metrics_table(metrics: dict) -> str:
    """A Markdown table of metric name and value (floats to 4 significant digits)."""
    lines = ["| metric | value |", "|---|---|"]
    for name, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} |")
    return "\n".join(lines)


def write_card(directory, *, title: str, summary: str, metadata: dict, sections: dict[str, str]) -> Path:
    """Write README.md with YAML front matter (Hub metadata) and the given sections, in order."""
    metadata = {key: value for key, value in {"library_name": "transformers", **metadata}.items() if value is not None}
    front = yaml.safe_dump(metadata, sort_keys=False).strip()
    body = [f"---\n{front}\n---", f"# {title}", summary]
    body += [f"## {heading}\n\n{text}" for heading, text in sections.items()]
    body.append(f"_Made with Plumb {__version__}._")
    path = Path(directory) / "README.md"
    path.write_text("\n\n".join(body) + "\n")
    return path
