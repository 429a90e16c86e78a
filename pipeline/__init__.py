"""The stages that decide, the sources, the outputs, the scheduler and the CLI."""
