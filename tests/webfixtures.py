"""Shared by the console tests: a demo data dir built once, copied per test, with one account per role."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pipeline.config import Config, load_config
from pipeline.context import open_context
from pipeline.demo.run import run_demo
from pipeline.users import add_user
from tests.conftest import write_config

PASSWORD = "correct horse battery"
ACCOUNTS = {"viewer": "张三", "clerk": "王芳", "admin": "李文"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def build_demo_template(root: Path) -> tuple[Path, object]:
    """Run the demo corpus into root/var and add the three accounts; returns (root, demo as_of)."""
    config = load_config(write_config(root))
    run = run_demo(config)
    try:
        for role, name in ACCOUNTS.items():
            add_user(run.ctx, name, role, PASSWORD, by="test")
    finally:
        run.ctx.close()
    return root, run.corpus.as_of


def copy_demo(template: Path, target: Path) -> Config:
    """A fresh copy of the demo data dir under `target` (each test may change it freely)."""
    config_path = write_config(target)
    shutil.rmtree(target / "var", ignore_errors=True)
    shutil.copytree(template / "var", target / "var", ignore=shutil.ignore_patterns("sample-mailbox"))
    config = load_config(config_path)
    open_context(config).close()  # migrations, folders
    return config
