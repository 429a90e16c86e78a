"""The systemd units: hardening score, no endless restarts of a broken config, and what the hardening
allows the worker to do (numpy, pandas, the parse sandbox under the kernel's MemoryDenyWriteExecute).

`systemd-analyze security --offline=yes` scores the unit files as shipped.  MemoryDenyWriteExecute=
is what systemd applies with prctl(PR_SET_MDWE); the test sets the same flag on a real `intake demo`
run (mail generation, parsing in the sandbox process, the pandas/xlsxwriter workbook).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPTS = ROOT / "scripts"
INTAKE = str(Path(sys.executable).parent / "intake")
MDWE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux 6.3+)
    sys.exit("PR_SET_MDWE unavailable: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(SCRIPTS / name, encoding="utf-8")
    return parser


@needs_analyze
@pytest.mark.parametrize(("unit", "limit"), [("intake.service", 2.0), ("intake-backup.service", 2.0)])
def test_exposure_score_at_most_two(unit: str, limit: float) -> None:
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SCRIPTS / unit)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= limit


def test_worker_unit_keeps_network_and_data_dir_and_stops_retrying_a_broken_config(tmp_path: Path) -> None:
    """GIVEN the worker unit WHEN read THEN it allows IPv4/IPv6, writes only its data dir, gives up after a burst of
    failures and never restarts exit code 2; WHEN `intake run` meets a broken config THEN it exits with 2."""
    unit = _unit("intake.service")
    service = unit["Service"]
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["ReadWritePaths"] == service["Environment"].split("INTAKE_DATA_DIR=")[1] == "/var/lib/intake"
    assert service["ProtectSystem"] == "strict" and service["CapabilityBoundingSet"] == ""
    assert int(unit["Unit"]["StartLimitBurst"]) >= 1 and int(unit["Unit"]["StartLimitIntervalSec"]) > 0
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"

    broken = tmp_path / "config.toml"
    broken.write_text("[campaign\nname = 1\n", encoding="utf-8")
    done = subprocess.run([INTAKE, "run", "--config", str(broken)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "var")})  # fmt: skip
    assert done.returncode == 2, done.stderr


@needs_analyze
def test_backup_timer_runs_nightly() -> None:
    timer = _unit("intake-backup.timer")
    assert timer["Timer"]["Persistent"] == "true"
    done = subprocess.run(["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0 and "02:30:00" in done.stdout
    service = _unit("intake-backup.service")["Service"]
    assert "intake backup" in service["ExecStart"] and "/var/lib/intake" in service["ReadWritePaths"]


def test_worker_stack_runs_with_memory_deny_write_execute(tmp_path: Path) -> None:
    """GIVEN the kernel's W^X lock that MemoryDenyWriteExecute= sets WHEN the demo generates, parses (sandbox
    process) and writes the workbook THEN it succeeds; and the lock is really on (a W+X mapping is refused)."""
    probe = subprocess.run([sys.executable, "-c", MDWE, sys.executable, "-c",
                            "import mmap; mmap.mmap(-1, 4096, prot=7)"], capture_output=True, text=True, timeout=60)  # fmt: skip
    if "PR_SET_MDWE unavailable" in probe.stderr:
        pytest.skip(probe.stderr.strip())
    assert probe.returncode != 0 and "PermissionError" in probe.stderr

    data = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-c", MDWE, INTAKE, "demo", "--data-dir", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "状态正确 96/96" in done.stdout.replace("\n", "")
    assert list((data / "reports").glob("*.xlsx"))
    backup = subprocess.run([sys.executable, "-c", MDWE, INTAKE, "backup", str(tmp_path / "bk"), "--data-dir",
                             str(data)], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert backup.returncode == 0, backup.stderr
