"""The `intake` command: a thin shell over the pipeline's library functions."""

from __future__ import annotations

import sys

from pipeline.cli import campaign, clerk, mail, ops, outgoing, senders, web, worker  # noqa: F401  (each module registers its commands)
from pipeline.cli.app import app, err_console


def main() -> None:
    """Entry point: run the app (its command group maps the project's errors to exit codes, see app.py)."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("已中断。")
        sys.exit(130)
