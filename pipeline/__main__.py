"""`python -m pipeline` runs the intake command."""

from pipeline.cli import main

main()
