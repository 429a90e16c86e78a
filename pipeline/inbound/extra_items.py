"""Item rows for items that are not nodes of the attachment tree, so a clerk can address them.

- a "超大附件" download link (`ParsedMessage.linked_files`): path "link1", kind `linked`, the
  problem `linked_file` (never fetched), the file name as the block wrote it;
- one report of several in one document (`pipeline.domain.splitting`): path "<path>#<n>", a copy
  of its document's row (same file, same bytes).

`intake assign 60:1#2`, the review queue and receipts then find them like any attachment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from parsers.types import ParsedMessage, PartKind, Problem, ProblemCode, document_path
from storage.rows import Decision, ItemRow


def extra_item_rows(parsed: ParsedMessage, rows: list[ItemRow], decisions: Iterable[Decision]) -> list[ItemRow]:
    """Rows for the message's linked files and for the parts of split documents named by `decisions`."""
    extra: list[ItemRow] = []
    for link in parsed.walk_linked():
        problem = Problem(ProblemCode.LINKED_FILE, f"{link.provider} link, expires {link.expires or 'unknown'}")
        extra.append(ItemRow(path=link.path, filename=link.filename, content_type="", kind=str(PartKind.LINKED),
                             size=0, sha256="", problem=str(problem), text_chars=0,
                             problem_code=str(ProblemCode.LINKED_FILE)))  # fmt: skip
    by_path = {row.path: row for row in rows}
    seen = {row.path for row in [*rows, *extra]}
    for d in decisions:
        base = document_path(d.item_path)
        if base != d.item_path and d.item_path not in seen and base in by_path:
            seen.add(d.item_path)
            extra.append(replace(by_path[base], path=d.item_path))
    return extra
