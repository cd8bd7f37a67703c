"""``apollo inspect`` and ``apollo compare``.

Thin over :mod:`apollo_cli.analysis` (measurements) and :mod:`apollo_cli.plot` (pictures).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import ApolloError
from . import app, reported_errors
from .console import err, out, print_error
from .options import DebugOpt
from .pictures import refuse_same_path
from .progress import format_duration

# ----------------------------------------------------------------------------- inspect


@app.command("inspect")
def inspect_files(
    files: Annotated[list[Path], typer.Argument(help="Audio files to inspect.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Codec, bitrate, sample rate and effective bandwidth of each file, and whether restoring it is likely to help."""
    from .. import analysis

    reports = []
    failed = 0
    with reported_errors(debug):
        for path in files:
            try:
                reports.append(analysis.inspect_file(path))
            except ApolloError as exc:  # report it and go on with the other files
                print_error(exc, debug)
                failed += 1
        if as_json:
            typer.echo(json.dumps([r.to_dict() for r in reports], indent=2))
        elif reports:
            table = Table(show_edge=False, pad_edge=False, header_style="bold")
            table.add_column("file", overflow="fold")
            table.add_column("format")
            for name in ("rate", "ch", "length", "bandwidth"):
                table.add_column(name, justify="right", no_wrap=True)
            for r in reports:
                table.add_row(
                    escape(r.path.name),
                    escape(r.codec.label),
                    f"{r.sample_rate / 1000:g} kHz",
                    str(r.channels),
                    format_duration(r.duration),
                    _bandwidth_cell(r.bandwidth),
                )
            out.print(table)
            for r in reports:
                colour = {True: "green", False: "yellow", None: "dim"}[r.verdict.helps]
                out.print(
                    Text.assemble((r.path.name, "bold"), ": ", (r.verdict.message, colour)), soft_wrap=True
                )
                if r.restored_by is not None:  # apollo-cli's provenance tag: version, model, settings
                    out.print(
                        Text.assemble((r.path.name, "bold"), ": restored by ", r.restored_by), soft_wrap=True
                    )
    if failed:
        raise typer.Exit(1)


def _bandwidth_cell(bw: Any) -> str:
    if bw.silent:
        return "silent"
    kind = "full" if bw.full_band else "Nyquist" if bw.rate_limited else "cut" if bw.sharp else "roll-off"
    return f"{bw.hz / 1000:.1f} kHz {kind}"


# ----------------------------------------------------------------------------- compare


@app.command("compare")
def compare(
    before: Annotated[
        Path, typer.Argument(help="The file before restoration (e.g. the MP3).", show_default=False)
    ],
    after: Annotated[Path, typer.Argument(help="The file after restoration.", show_default=False)],
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            "-r",
            help="Clean original: adds SI-SNR, SDR and LSD of both against it.",
            show_default=False,
        ),
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option(
            "--png",
            help="Draw stacked spectrograms to this PNG file (needs matplotlib: the plot extra).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing PNG.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Bandwidth before and after restoration and, against a clean reference, SI-SNR, SDR and LSD."""
    from .. import analysis

    with reported_errors(debug):
        if png is not None:  # before any decoding: matplotlib installed, the PNG writable
            from .. import plot

            inputs = {"before": before, "after": after} | ({"reference": reference} if reference else {})
            refuse_same_path(png, "--png", inputs)
            plot.check_png_path(png, overwrite=overwrite)
        result = analysis.compare_files(before, after, reference)
        if png is not None:
            plot.save_comparison_png(result, png, overwrite=overwrite)
        if as_json:
            data = result.to_dict()
            if png is not None:
                data["png"] = str(png)
            typer.echo(json.dumps(data, indent=2))
        else:
            out.print(_comparison_table(result))
            if png is not None:
                out.print(f"wrote {escape(str(png))}", soft_wrap=True)
        _note_length_mismatch(result)


def _comparison_table(result: Any) -> Table:
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("")
    for m in result.files:
        table.add_column(m.role, justify="right")
    table.add_row("file", *[escape(m.path.name) for m in result.files])
    table.add_row("bandwidth", *[_bandwidth_cell(m.bandwidth) for m in result.files])
    if result.metrics:
        rows = (("SI-SNR ↑", "si_snr"), ("SDR ↑", "sdr"), ("LSD ↓", "lsd"))
        for label, key in rows:
            cells = [
                _db(getattr(result.metrics[m.role], key)) if m.role in result.metrics else ""
                for m in result.files
            ]
            table.add_row(label, *cells)
    return table


def _db(value: float) -> str:
    if math.isinf(value):
        return "∞ dB" if value > 0 else "-∞ dB"
    return f"{value:.2f} dB"


def _note_length_mismatch(result: Any) -> None:
    lengths = [m.audio.duration for m in result.files]
    if max(lengths) - min(lengths) > 0.05:
        listed = ", ".join(f"{m.role} {m.audio.duration:.2f} s" for m in result.files)
        what = "the metrics use the first" if result.metrics else "they are not aligned beyond the first"
        err.print(
            Text.assemble(
                ("note:", "yellow"), f" the lengths differ ({listed}); {what} {min(lengths):.2f} s"
            ),
            soft_wrap=True,
        )
