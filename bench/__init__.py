"""Performance benchmarks (issue 8): `scripts/bench` runs `python -m bench.run`.

Each module measures one thing and returns plain dicts of figures; `bench.run`
prints the table and writes bench/results/latest.json.  Nothing here is imported
by the application.
"""
