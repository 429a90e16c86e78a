"""The clerks' web console (`intake web`): pages over the same library functions as the CLI.

`app.create_app(config)` builds the ASGI app; `queries` is the one module that calls into
the library; `routes` (GET) and `actions` (POST) render its results; `auth` guards both.
"""
