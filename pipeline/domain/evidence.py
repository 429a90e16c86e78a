"""How much a decision's evidence weighs: what attribution accepts, and what status holds on to.

Kept apart from attribution so that status (and `intake status`, which starts from it) need
not load the attributor.
"""

from __future__ import annotations

ACCEPT_SCORE = 3.0  # the evidence an institution needs before a report is counted for it


def evidence_strength(decision: object, institution: str) -> float:
    """The summed weight of a decision's evidence for `institution` (what a review item holds on)."""
    total = 0.0
    for item in getattr(decision, "evidence", None) or ():
        if isinstance(item, dict) and item.get("institution") == institution:
            try:
                total += float(item.get("weight") or 0.0)
            except (TypeError, ValueError):
                continue
    return total
