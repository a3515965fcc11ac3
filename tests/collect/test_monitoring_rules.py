"""configs/monitoring/: the Prometheus alerting rules are valid, and fire (and stay quiet) as their unit tests say."""

import shutil
import subprocess
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parents[2] / "configs" / "monitoring"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian's `prometheus` package ships it: apt-get install prometheus)",
)


def promtool(*arguments: str) -> subprocess.CompletedProcess:
    """Run promtool in configs/monitoring (a test file names its rule files relative to itself)."""
    return subprocess.run([PROMTOOL, *arguments], cwd=MONITORING, capture_output=True, text=True, timeout=120)


def test_the_alerting_rules_are_valid():
    checked = promtool("check", "rules", "alerts.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


def test_the_alerting_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "alerts.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
