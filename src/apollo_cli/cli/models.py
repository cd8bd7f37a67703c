"""``apollo download-model`` and ``apollo models``: the models on the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table

from ..errors import ApolloError, OptionError
from ..registry import DEFAULT_MODEL, KNOWN_MODELS
from . import app, reported_errors
from .console import err, out
from .options import DebugOpt, OfflineOpt, QuietOpt, RevisionOpt
from .progress import Display

if TYPE_CHECKING:  # the hub (and huggingface_hub) is imported only when a command needs it
    from ..hub import Fetched


def _tilde(path: Path) -> str:
    """``~/...`` for paths in the home directory."""
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


def _describe_check(fetched: Fetched) -> str:
    digest = f"sha256 {fetched.sha256[:12]}…"
    if fetched.checked_against == "hub":
        return f"{digest} matches the Hub's record"
    if fetched.checked_against == "registry":
        return f"{digest} matches apollo-cli's registry"
    return f"{digest} (the Hub's checksum is not known here, so it was not compared)"


@app.command("download-model")
def download_model(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Known model names (see 'apollo models'), Hub references owner/repo/path/file.ckpt[@REV] "
            f"or Hub URLs. Default: {DEFAULT_MODEL}.",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every model apollo-cli knows.")] = False,
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download models into the Hugging Face cache and verify their SHA-256.

    Safe to interrupt and re-run: a file appears in the cache only when complete
    and verified. Files already cached are re-hashed and replaced if damaged. Ends
    with the path of each file.
    """
    from .. import hub

    display = Display(err, quiet)
    failed = 0
    with reported_errors(debug):
        if all_models and names:
            raise OptionError("give model names or --all, not both")
        if all_models and revision:
            raise OptionError("--revision cannot be used with --all: each model lives in its own repository")
        wanted = list(KNOWN_MODELS) if all_models else (names or [DEFAULT_MODEL])
        for name in wanted:
            try:
                found = hub.locate(name, revision)
                if not isinstance(found, hub.Target):
                    raise OptionError(f"{name} is a local file; download-model fetches models from the Hub")
                with display.download(f"downloading {found.label or found.where}") as progress:
                    fetched = hub.fetch(found, offline=offline or None, progress=progress, full_check=True)
            except ApolloError as exc:
                if len(wanted) == 1:
                    raise
                failed += 1
                err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
                continue
            if quiet:
                continue
            action = "downloaded" if fetched.downloaded else "already cached"
            out.print(
                f"[green]✓[/] {escape(found.label or found.where)}: {escape(found.where)}, "
                f"{decimal(fetched.size)}, {action}; {_describe_check(fetched)}",
                soft_wrap=True,
            )
            # matches_registry is False only for a file the registry lists, with its sha256.
            known = found.known
            if fetched.matches_registry is False and known is not None and known.sha256:
                err.print(
                    f"[yellow]note:[/] this is not the file apollo-cli's registry lists for "
                    f"{escape(found.label)} (sha256 {known.sha256[:12]}…): the repository has changed "
                    "since apollo-cli listed it, so results may differ from the published model's",
                    soft_wrap=True,
                )
            out.print(f"  {escape(str(fetched.path))}", soft_wrap=True, highlight=False)
    if failed:
        raise typer.Exit(1)


#: Width for output that is not a terminal: wide enough that no table cell wraps.
_UNWRAPPED = 10_000


@app.command("models")
def models(debug: DebugOpt = False) -> None:
    """List the models apollo-cli knows: what each restores, size, licence, whether cached.

    Reads only the local cache; never touches the network.
    """
    from .. import hub

    with reported_errors(debug):
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("name", no_wrap=True, style="bold")
        table.add_column("restores", ratio=3)
        table.add_column("size", no_wrap=True, justify="right")
        table.add_column("licence", ratio=2)
        table.add_column("cached", no_wrap=True)
        table.add_column("path", overflow="fold", ratio=3)
        for model in KNOWN_MODELS.values():
            status = hub.cache_status(
                hub.Target(model.repo_id, model.filename, label=model.name, known=model)
            )
            size = status.size if status.size is not None else model.size_bytes
            if status.path is None:
                cached, where = "[dim]no[/]", f"[dim]{escape(model.reference)}[/]"
            else:
                cached = "[green]yes[/], verified" if status.verified else "[green]yes[/]"
                where = escape(_tilde(status.path))
            name = model.name + (" [dim](default)[/]" if model.name == DEFAULT_MODEL else "")
            table.add_row(
                name,
                escape(model.description),
                decimal(size) if size else "?",
                escape(model.license),
                cached,
                where,
            )
        # Piped (not a terminal), nothing is wrapped: a path or a description broken over
        # lines at 80 columns is no use to grep or a script. Each row is one line.
        if out.is_terminal:
            out.print(table)
        else:
            Console(file=out.file, width=_UNWRAPPED, highlight=False, no_color=out.no_color).print(table)
        out.print(
            f"cache: {escape(str(hub.cache_dir()))}\n"
            "download with: apollo download-model NAME (or --all); any Hub file works too: "
            "--model owner/repo/path/file.ckpt",
            soft_wrap=True,
            highlight=False,
        )
