"""The ``kura`` command: typer commands (``main``) and the terminal renderers (``chat``, ``ingest_report``)."""
