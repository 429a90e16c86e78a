"""The `intake` command: a thin shell over the pipeline's library functions."""

from __future__ import annotations

import sys

from pipeline.cli import campaign, clerk, mail, outgoing, worker  # noqa: F401  (each module registers its commands)
from pipeline.cli.app import app, err_console
from pipeline.errors import AmbiguousError, IntakeError
from storage.errors import StorageError


def main() -> None:
    """Entry point: run the app, turning the project's errors into a clean message and exit code 2."""
    try:
        app()
    except AmbiguousError as err:
        err_console.print(f"[red]错误：[/red]{err}")
        for candidate in err.candidates[:10]:
            err_console.print(f"  · {candidate}")
        sys.exit(2)
    except (IntakeError, StorageError) as err:
        err_console.print(f"[red]错误：[/red]{err}")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("已中断。")
        sys.exit(130)
