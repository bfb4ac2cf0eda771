"""The ``kura`` command. Each command is a thin shell over functions the web UI calls too."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from rag.errors import KuraError

app = typer.Typer(
    help="Kura: private document question answering on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="Prepare and inspect models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
users_app = typer.Typer(help="Manage web UI users and their API keys.", no_args_is_help=True)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(help="API keys for the OpenAI-compatible API and MCP (docs/api.md).", no_args_is_help=True)
users_app.add_typer(keys_app, name="key")
collections_app = typer.Typer(
    help="List collections, delete one (--rm NAME), or list a collection's files (files NAME).",
    invoke_without_command=True,
)
app.add_typer(collections_app, name="collections")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: ./config.yaml, then $KURA_CONFIG, then ~/.config/kura/config.yaml).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"kura {version('kura')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also say which devices were passed over and why.")
    ] = False,
) -> None:
    if verbose:
        logging.getLogger("kura").setLevel(logging.DEBUG)


def _settings(config: Path | None) -> Any:
    """The settings of the config file found; never the defaults by accident, which would put a store in
    whatever folder the command happens to run from."""
    from rag.config import DEFAULT_CONFIG_NAME, find_config_file, load_settings, user_config_file
    from rag.offline import allow_model_download

    path = find_config_file(config)
    if path is None:
        raise KuraError(
            f"no {DEFAULT_CONFIG_NAME} here, in $KURA_CONFIG or at {user_config_file()}; run kura from the "
            "project folder, set KURA_CONFIG=/path/to/config.yaml, or create that file"
        )
    if config is None and path != Path.cwd() / DEFAULT_CONFIG_NAME:
        _say(f"using the config {path}")
    settings = load_settings(path)
    if settings.network.allow_model_download:
        allow_model_download()
    return settings


def _say(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def doctor(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show the OpenVINO version, devices, the device each model runs on and why, and load times."""
    from rag.doctor import format_report, run_doctor

    logging.getLogger("kura.devices").setLevel(logging.DEBUG)  # the devices passed over, said as they happen
    report = run_doctor(_settings(config), _say)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest (folders recursively).")],
    collection: Annotated[str | None, typer.Option(help="Collection (default: vectorstore.collection).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove chunks of files gone from disk.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would change; write nothing.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any file was skipped.")] = False,
    reembed: Annotated[
        bool, typer.Option("--reembed", help="Rebuild the collection with the current embedder.")
    ] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for another writer.")] = 0.0,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Then keep the collection equal to the folders, one line per change (Ctrl-C)."),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add folders of documents to a collection; only new or changed files are parsed and embedded."""
    from ingest.collection import Collection, IngestOptions
    from rag.cli.ingest_report import cancelled_line, ctrl_c_cancels, print_summary, progress_bar
    from rag.models.factory import LazyEmbedder
    from rag.store import connect

    settings = _settings(config)
    embedder = LazyEmbedder(settings, _say)
    if not dry_run and (reembed or (collection or settings.vectorstore.collection) not in connect(settings).names()):
        embedder.load()  # a first ingest embeds anyway; a model that cannot load must not leave an empty collection
    if watch:
        if dry_run or reembed:
            raise KuraError("--watch writes as it goes: leave out --dry-run and --reembed")
        from rag.cli.watching import watch_folders

        target = Collection(settings, collection, wait)
        raise typer.Exit(watch_folders(settings, target, paths, embedder, as_json, _say))
    options = IngestOptions(prune, dry_run, reembed)
    with progress_bar(not as_json) as progress, ctrl_c_cancels() as cancel:
        report = Collection(settings, collection, wait).ingest(paths, embedder, options, progress, cancel)  # type: ignore[arg-type]
    if report.cancelled:
        _say(cancelled_line(report))
        raise typer.Exit(130)
    if not embedder.loaded:
        logging.getLogger("kura.ingest").debug("embedder: not loaded, nothing to embed")
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_summary(report)
    raise typer.Exit(report.exit_code(strict))


def _listing(rows: list[Any], as_json: bool, empty: str, table: Callable[[], None]) -> None:
    """A command's list: JSON for scripts, one line when there is nothing, else its table."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        typer.echo(empty)
    else:
        table()


CollectionOption = Annotated[str | None, typer.Option(help="Collection (default: vectorstore.collection).")]
KOption = Annotated[int | None, typer.Option("--k", help="Sources to retrieve (default: retrieval.top_k).")]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    collection: CollectionOption = None,
    k: KOption = None,
    show_reasoning: Annotated[bool, typer.Option("--show-reasoning", help="Print the model's reasoning too.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer one question from your documents, with numbered citations."""
    from rag.assistant import open_assistant
    from rag.cli.chat import stream_answer

    settings = _settings(config)
    # One answer never earns back prompt lookup's pipeline: its load took 2.2 s more than the plain one's.
    settings.llm.prompt_lookup = False
    assistant = open_assistant(settings, collection, _say)
    if as_json:
        answer = assistant.answer(question, k=k)
        typer.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    stream_answer(assistant.ask(question, k=k), show_reasoning)


@app.command()
def chat(
    collection: CollectionOption = None,
    k: KOption = None,
    show_reasoning: Annotated[bool, typer.Option("--show-reasoning", help="Print the model's reasoning too.")] = False,
    config: ConfigOption = None,
) -> None:
    """A conversation: follow-ups use the history. Ctrl-C stops an answer; 'exit', 'quit' or Ctrl-D ends it."""
    from rag.assistant import open_assistant
    from rag.cli.chat import chat_loop

    chat_loop(open_assistant(_settings(config), collection, _say), k, show_reasoning)


@app.command("eval")
def evaluate(
    questions: Annotated[
        Path,
        typer.Argument(help="JSONL lines {id, question, answers[], kind}, optionally history[] (earlier questions)."),
    ],
    collection: CollectionOption = None,
    k: KOption = None,
    output: Annotated[Path | None, typer.Option(help="Write one JSON line per question here.")] = None,
    split: Annotated[
        str | None, typer.Option(help="Only the questions of this split (dev to tune on, holdout to check).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Score retrieval (hit@1, hit@5, MRR), answers (accuracy, concise accuracy, follow-ups, abstention),
    latency, and the stage that lost each miss on a question set."""
    from rag.assistant import open_assistant
    from rag.evaluate import evaluate as run_eval
    from rag.evaluate import read_questions, write_results

    items = read_questions(questions, split)
    assistant = open_assistant(_settings(config), collection, _say)
    with write_results(output) as write:
        metrics = run_eval(assistant, items, k, write)
    typer.echo(json.dumps(metrics, indent=2))


@collections_app.callback()
def collections(
    ctx: typer.Context,
    remove: Annotated[str | None, typer.Option("--rm", help="Delete this collection and its manifest.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (for scripts).")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List collections with their file and chunk counts, or delete one with --rm NAME."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config  # `kura collections --config FILE files NAME` means that file too
        return
    from ingest.collection import list_collections
    from rag.cli.tables import collections_table

    settings = _settings(config)
    if remove:
        _remove_collection(settings, remove, yes)
        return
    rows = list_collections(settings)
    _listing(
        rows, as_json, "no collections yet; add documents with `kura ingest FOLDER`", lambda: collections_table(rows)
    )


def _remove_collection(settings: Any, name: str, yes: bool) -> None:
    """Deleting drops every chunk; ask first, showing what goes, unless ``--yes`` says a script means it."""
    from ingest.collection import Collection, list_collections
    from rag.wording import plural

    row = next((r for r in list_collections(settings) if r["name"] == name), None)
    if row is not None and not yes:
        if not sys.stdin.isatty():
            raise KuraError(f"not deleting collection '{name}' without confirmation; add --yes to delete it")
        what = f"{plural(row['files'], 'file')}, {plural(row['chunks'], 'chunk')}"
        if not typer.confirm(f"Delete collection '{name}' ({what})?", default=False, err=True):
            typer.echo("nothing deleted", err=True)
            raise typer.Exit(1)
    Collection(settings, name).delete()
    typer.echo(f"deleted collection '{name}'")


@collections_app.command("files")
def collection_files(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The collection.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a collection's files with their state, chunk count and ingest time."""
    from ingest.collection import Collection
    from rag.cli.tables import files_table
    from rag.store import connect

    settings = _settings(config or ctx.obj)
    if name not in connect(settings).names():
        raise KuraError(f"no collection named '{name}'; `kura collections` lists them")
    documents = sorted(Collection(settings, name).documents(), key=lambda d: d.rel)
    rows = [
        {
            "path": d.rel,
            "folder": str(d.root),
            "state": d.state,
            "chunks": d.chunks,
            "ingested_at": d.ingested_at,
            "uploaded": d.uploaded,
        }
        for d in documents
    ]
    empty = f"collection '{name}' has no files; add some with `kura ingest FOLDER --collection {name}`"
    _listing(rows, as_json, empty, lambda: files_table(name, documents))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: ui.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: ui.port, 7860).")] = None,
    collection: Annotated[
        str | None, typer.Option(help="Collection shown first (default: vectorstore.collection).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Start the web UI: chat with citations, documents, uploads. Login is required once users exist."""
    from ui.app import serve as run_server

    run_server(_settings(config), host, port, collection, _say)


@app.command()
def bench(
    what: Annotated[str, typer.Argument(help="embed, llm, retrieve, e2e, ingest or all.")] = "all",
    path: Annotated[Path | None, typer.Argument(help="For ingest: files or folder (default: data/sample).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A small smoke run (2 runs, fewer inputs).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every number to this JSON file.")] = None,
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the tables as Markdown (for README).")
    ] = None,
    from_json: Annotated[
        Path | None, typer.Option("--from-json", help="Re-render a saved --json run instead of measuring.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Measure Kura's engines against their baselines (sentence-transformers, llama.cpp, PyTorch, a notebook ingest)."""
    from rag.bench.runner import rerender, run_bench

    if from_json is not None:
        results = rerender(from_json, markdown_out, _say)
    else:
        results = run_bench(_settings(config), what, path, quick, json_out, _say, markdown_out)
    raise typer.Exit(1 if results["meta"].get("failed") else 0)


@users_app.command("list")
def users_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List web UI users: the collections each may use and edit others' uploads in, and where each is stored."""
    from rag.cli.tables import users_table
    from rag.users import user_rows

    settings = _settings(config)
    rows = user_rows(settings)
    empty = "no users yet: `kura serve` serves only this machine, without a login; `kura users add NAME`"
    _listing(rows, as_json, empty, lambda: users_table(rows, settings))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, '.', '_', '@', '-').")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add a web UI user, or set a new password for one; stores only a salted hash (ui.users_file)."""
    from rag.users import add_user, check_name, users_path

    settings = _settings(config)
    check_name(name)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    created = add_user(settings, name, password)
    typer.echo(f"{'added user' if created else 'changed the password of'} {name} in {users_path(settings)}")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="The user to remove.")], config: ConfigOption = None) -> None:
    """Remove a web UI user; a running `kura serve` ends their sessions and API keys at their next request."""
    from rag.users import remove_user, users_path

    settings = _settings(config)
    left = remove_user(settings, name)
    typer.echo(f"removed user {name} from {users_path(settings)}")
    if not left:
        typer.echo("no users are left: the next `kura serve` serves only this machine, without a login")


@keys_app.command("add")
def key_add(
    user: Annotated[str, typer.Argument(help="The user the key acts as (their collections, their audit lines).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an API key for USER; it is printed once and only its hash is stored (api.keys_file)."""
    from rag.audit import AuditLog
    from rag.keys import add_key, keys_path

    settings = _settings(config)
    key_id, key = add_key(settings, user)
    AuditLog(settings).record("key_created", user=user, key=key_id, via="cli")
    if as_json:
        typer.echo(json.dumps({"id": key_id, "user": user, "key": key}))
        return
    typer.echo(key)
    _say(f"API key {key_id} for {user}, stored hashed in {keys_path(settings)}: copy it now, it is not shown again")


@keys_app.command("rm")
def key_rm(
    target: Annotated[str, typer.Argument(help="A key's id (or the key itself), or a user name: all their keys.")],
    config: ConfigOption = None,
) -> None:
    """Remove an API key (or every key of a user); a running `kura serve` refuses it at the next request."""
    from rag.audit import AuditLog
    from rag.keys import remove_keys

    settings = _settings(config)
    audit = AuditLog(settings)
    for key_id, user in remove_keys(settings, target):
        audit.record("key_removed", user=user, key=key_id, via="cli")
        typer.echo(f"removed API key {key_id} of {user}")


@keys_app.command("list")
def key_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List API keys: id, user and when each was made (never the key or its hash)."""
    from rag.keys import key_rows

    rows = key_rows(_settings(config))

    def table() -> None:
        for row in rows:
            typer.echo(f"{row['id']}  {row['user']:<24} {row['created']}")

    _listing(rows, as_json, "no API keys yet: `kura users key add USER`", table)


@app.command()
def mcp(config: ConfigOption = None) -> None:
    """Serve the MCP tools (list_collections, search, ask) over stdio, for an IDE assistant that starts Kura.

    Once users exist, set KURA_API_KEY to a key (`kura users key add USER`): tools then act as its user."""
    from ui.mcp_server import run_stdio

    run_stdio(_settings(config), _say)


@app.command()
def audit(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's events.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events since: 30m, 12h, 7d, 2026-12-01 or 2026-12-01T09:00.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read the audit log: logins, questions (user, collection, chunks shown, abstained, latency), uploads,
    deletes and API keys, oldest first."""
    from rag.audit import parse_since, read_events

    settings = _settings(config)
    events = list(read_events(settings, user, parse_since(since) if since else None))
    if as_json:
        typer.echo(json.dumps(events, indent=2, ensure_ascii=False))
        return
    if not events:
        typer.echo("no audit events" + (" matching" if user or since else f" in {settings.audit.folder}"))
    for event in events:
        typer.echo(_audit_line(event))


def _audit_line(event: dict[str, Any]) -> str:
    """One event on one line: time, event, user, then its other fields as key=value."""
    head = f"{event.get('time', '?')}  {event.get('event', '?'):<12} {event.get('user') or '-':<16}"
    rest = {k: v for k, v in event.items() if k not in ("time", "event", "user")}
    return head + " " + " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in rest.items())


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
    for noisy in ("httpx", "urllib3", "chromadb", "transformers", "nncf", "optimum", "pypdf", "mcp", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        # Without standalone mode click returns, rather than raises, the code of a `typer.Exit`.
        code = app(standalone_mode=False)
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
    sys.exit(code if isinstance(code, int) else 0)
