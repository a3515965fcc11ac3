"""The suite's own rules: under CI=true a skipped test fails the run; elsewhere a skip is only reported."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(tmp_path, *, ci: bool) -> subprocess.CompletedProcess:
    """Run pytest on one passing and one skipped test with this suite's conftest loaded as a plugin."""
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_passes():\n    assert True\n\n"
        "@pytest.mark.skip(reason='no PostgreSQL server programs')\n"
        "def test_needs_postgres():\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER")} | (
        {"CI": "true"} if ci else {}
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", [True, False])
def test_a_skip_fails_the_run_only_in_ci(tmp_path, ci):
    result = run_pytest(tmp_path, ci=ci)
    assert "1 passed, 1 skipped" in result.stdout, result.stdout
    if ci:
        assert result.returncode == 1, result.stdout
        assert "test_sample.py::test_needs_postgres: Skipped: no PostgreSQL server programs" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
