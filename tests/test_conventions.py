"""CLI conventions: `intake --version` and shell completion, run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.conftest import ROOT


def _intake(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # The installed entry point: completion scripts are named after the program bash sees.
    return subprocess.run([str(Path(sys.executable).parent / "intake"), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=60)  # fmt: skip


def test_version_prints_the_installed_version() -> None:
    done = _intake("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"intake {version('report-intake')}"


def test_bash_completion_script_and_live_completions() -> None:
    """GIVEN bash WHEN asking for the script THEN it defines the completion function; WHEN bash completes
    `intake ba` and `intake health --max` THEN the command and option names come back."""
    script = _intake("--show-completion", "bash")
    assert script.returncode == 0 and "_intake_completion" in script.stdout and "complete -o default" in script.stdout
    words = _intake(_INTAKE_COMPLETE="complete_bash", COMP_WORDS="intake ba", COMP_CWORD="1")
    assert words.stdout.split() == ["backup"]
    words = _intake(_INTAKE_COMPLETE="complete_bash", COMP_WORDS="intake re", COMP_CWORD="1")
    assert {"report", "review", "restore"} <= set(words.stdout.split())
    options = _intake(_INTAKE_COMPLETE="complete_bash", COMP_WORDS="intake health --max", COMP_CWORD="2")
    assert options.stdout.split() == ["--max-age"]
