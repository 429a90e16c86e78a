"""Storage: tables, migrations and the raw store, exposed as save_* / fetch_* functions."""
