"""Placeholder: commands of this group are added by their issue."""

from __future__ import annotations
