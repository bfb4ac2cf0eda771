"""The ``kura`` command. Each command is a thin shell over functions the web UI calls too."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rag.errors import KuraError

app = typer.Typer(
    help="Kura: private document question answering on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Prepare and inspect models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $KURA_CONFIG, then ./config.yaml)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]


def _settings(config: Path | None) -> Any:
    from rag.config import load_settings
    from rag.offline import allow_model_download

    settings = load_settings(config)
    if settings.network.allow_model_download:
        allow_model_download()
    return settings


def _say(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def doctor(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show the OpenVINO version, devices, the device each model runs on and why, and load times."""
    from rag.doctor import format_report, run_doctor

    report = run_doctor(_settings(config), _say)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@models_app.command("prepare")
def models_prepare(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Convert each configured model to OpenVINO IR once; later runs do no work unless something changed."""
    from rag.models.prepare import describe, prepare

    settings = _settings(config)
    results = []
    for role in ("embedder", "llm"):
        if role == "llm" and settings.llm.backend != "openvino":
            continue
        model = prepare(role, settings, _say)
        results.append(model)
        if not as_json:
            typer.echo(describe(model))
    if as_json:
        payload = [
            {
                "role": m.role,
                "source": m.source.spec,
                "path": str(m.path),
                "converted": m.converted,
                "seconds": round(m.seconds, 2),
                "size_mb": round(m.size_bytes / 1e6, 1),
                "options": m.options,
            }
            for m in results
        ]
        typer.echo(json.dumps(payload, indent=2))


def main() -> None:
    """Entry point: user errors become one line on stderr and an exit code, never a traceback."""
    from rag.offline import apply_offline_environment

    apply_offline_environment()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "chromadb", "transformers", "nncf", "optimum"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app(standalone_mode=False)
    except KuraError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
