"""Pure parsing: bytes in, typed results out (no disk, no network, no pipeline/storage imports)."""
