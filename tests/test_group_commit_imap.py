"""Group commit on the IMAP path (real Dovecot): the checkpoint moves only over a batch that is durable."""

# ruff: noqa: F811 - the fixtures of test_imap are imported by name

from __future__ import annotations

from sqlalchemy import select

import pipeline.inbound.imap as source
from storage.schema import messages

from .test_imap import append_many, checkpoint, count, fast_backoff, setup  # noqa: F401 - fixtures


def test_checkpoint_advances_only_over_stored_batches(setup, imap_account, monkeypatch):
    """GIVEN 10 messages fetched in batches of 4 WHEN the checkpoint advances THEN every UID up to it has its row
    committed and its raw file on disk."""
    append_many(imap_account, 10)
    ctx = setup(batch_size=4)
    seen: list[tuple[int, int, int]] = []  # (checkpoint uid, rows then, raw files then)
    real = source.state.advance_checkpoint

    def advance(conn, folder, uidvalidity, uid):  # noqa: ANN001, ANN202
        with ctx.db.connect() as other:  # what another process would see now: committed rows only
            rows = other.execute(select(messages.c.raw_path)).scalars().all()
        on_disk = sum(1 for path in rows if (ctx.data_dir / path).is_file())
        seen.append((uid, len(rows), on_disk))
        return real(conn, folder, uidvalidity, uid)

    monkeypatch.setattr(source.state, "advance_checkpoint", advance)
    summary = source.poll_once(ctx)
    assert summary.ok and summary.folders[0].new == 10
    assert seen == [(4, 4, 4), (8, 8, 8), (10, 10, 10)]
    assert count(ctx) == 10 and checkpoint(ctx).last_uid == 10
