"""Cap the text that recognition and attribution read, so their work is bounded on any message.

The parser already caps a document's text (`[limits] max_text_chars`), but that is sized
for keeping text, not for matching it line by line in the main process.  A self-check
report is a few pages: its title and 报送单位 line are at the top, its signature at the
bottom.  `bounded(parsed)` keeps, per document, the head up to `DOCUMENT_CHARS`, the
header/footer paragraphs and the last `TAIL_PARAGRAPHS` paragraphs; every line is cut at
`LINE_CHARS`; a mail body is cut at `BODY_CHARS`.  Nothing stored is changed: the capped
copy is only what the rules look at.
"""

from __future__ import annotations

from dataclasses import replace

from parsers.types import DocumentText, ParsedMessage, Part

LINE_CHARS = 2_000
BODY_CHARS = 200_000
DOCUMENT_CHARS = 200_000
TAIL_PARAGRAPHS = 40
TABLE_ROWS = 2_000
HEADER_CHARS = 2_000
FILENAME_CHARS = 500


def clip_lines(text: str, *, total: int = BODY_CHARS, line: int = LINE_CHARS) -> str:
    """`text` cut at `total` characters, each of its lines cut at `line` characters."""
    text = text[:total]
    if len(text) <= line:
        return text
    lines = text.split("\n")
    if max(map(len, lines)) <= line:
        return text
    return "\n".join(part[:line] for part in lines)


def bounded(parsed: ParsedMessage) -> ParsedMessage:
    """`parsed` with its text capped as the module docstring says; the same object when nothing is over."""
    body = clip_lines(parsed.text_body)
    attachments = tuple(_part(p) for p in parsed.attachments)
    subject, name = parsed.subject[:HEADER_CHARS], parsed.sender.name[:HEADER_CHARS]
    if (body is parsed.text_body and subject is parsed.subject and name is parsed.sender.name
            and len(parsed.html_body) <= BODY_CHARS and all(a is b for a, b in zip(attachments, parsed.attachments, strict=True))):  # fmt: skip
        return parsed
    return replace(
        parsed,
        subject=subject,
        sender=replace(parsed.sender, name=name),
        text_body=body,
        html_body=parsed.html_body[:BODY_CHARS],
        attachments=attachments,
    )


def _part(part: Part) -> Part:
    document = _document(part.document) if part.document is not None else None
    message = bounded(part.message) if part.message is not None else None
    children = tuple(_part(c) for c in part.children)
    if (document is part.document and message is part.message and len(part.filename) <= FILENAME_CHARS
            and all(a is b for a, b in zip(children, part.children, strict=True))):  # fmt: skip
        return part
    return replace(part, filename=part.filename[:FILENAME_CHARS], document=document, message=message, children=children)


def _document(document: DocumentText) -> DocumentText:
    paragraphs = document.paragraphs
    if (sum(len(p.text) for p in paragraphs) <= DOCUMENT_CHARS and all(len(p.text) <= LINE_CHARS for p in paragraphs)
            and sum(map(len, document.tables)) <= TABLE_ROWS
            and all(len(cell) <= LINE_CHARS for table in document.tables for row in table for cell in row)
            and len(document.title) <= HEADER_CHARS):  # fmt: skip
        return document
    keep: list[int] = []
    used = 0
    tail_from = max(0, len(paragraphs) - TAIL_PARAGRAPHS)
    for index, p in enumerate(paragraphs):
        if used <= DOCUMENT_CHARS or index >= tail_from or p.where in ("header", "footer"):
            keep.append(index)
            used += min(len(p.text), LINE_CHARS)
    kept = tuple(
        paragraphs[i] if len(paragraphs[i].text) <= LINE_CHARS else replace(paragraphs[i], text=paragraphs[i].text[:LINE_CHARS])
        for i in keep
    )
    tables = []
    rows_left = TABLE_ROWS
    for table in document.tables:
        if rows_left <= 0:
            break
        rows = table[:rows_left]
        rows_left -= len(rows)
        tables.append(tuple(tuple(cell[:LINE_CHARS] for cell in row) for row in rows))
    return replace(document, paragraphs=kept, tables=tuple(tables), title=document.title[:HEADER_CHARS])
