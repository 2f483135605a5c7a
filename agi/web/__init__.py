"""`dialer web`: the public HTTP API (FastAPI on uvicorn), and later the agent console.

``app.create_app`` builds the ASGI app: ``context`` authenticates API keys and checks roles
(agi.auth), ``errors`` turns every failure into a JSON error, ``limits`` bounds request sizes
and rates, ``routes`` holds one module per group of endpoints, each a thin layer over the
functions the CLI uses (agi.admin, agi.importer, agi.reports, ...).
"""
