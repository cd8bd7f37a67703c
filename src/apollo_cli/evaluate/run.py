"""The evaluation loop: segment, encode, decode, align, restore, score; resumable.

For each reference, a segment (:mod:`.segments`); for each bitrate, the segment encoded
and decoded (:mod:`.coding`) and lined up with it (:mod:`.alignment`); for each model,
the decoded audio restored (:func:`apollo_cli.api.restore`); the coded audio and every
restoration scored against the segment (:mod:`.scoring`). Everything is cached
(:mod:`.store`), and work is done only for what the cache lacks, so a run that was
stopped continues and a finished one redoes nothing. One segment is in memory at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import api, tags
from ..errors import OutputError
from ..model import Apollo
from ..options import RestoreOptions
from . import alignment, coding, scoring
from .report import CODEC, EvaluationReport, Row
from .segments import (
    SAMPLE_RATE,
    Reference,
    Segment,
    check_readable,
    check_seconds,
    choose_segment,
    content_hash,
    find_references,
)
from .store import Store, key, write_text

#: ``progress(done, total, what)``: called after each (file, bitrate, model) is done;
#: ``what`` names the file, bitrate and model just finished.
EvaluationProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class _Model:
    label: str
    model: Apollo
    identity: str
    key: str


def default_report_dir(clean_dir: str | os.PathLike[str]) -> Path:
    """``CLEAN_DIR-evaluation`` beside the clean folder."""
    resolved = Path(clean_dir).resolve()
    return resolved.with_name(f"{resolved.name}-evaluation")


def evaluate(
    clean_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str] | None = None,
    *,
    models: Sequence[Apollo] = (),
    bitrates: Sequence[int] = coding.DEFAULT_BITRATES,
    codec: str = "mp3",
    segment_seconds: float = 10.0,
    max_files: int | None = None,
    include: Sequence[str] = (),
    group_by: str | None = None,
    metrics: str | Sequence[str] | None = None,
    options: RestoreOptions | None = None,
    progress: EvaluationProgress | None = None,
) -> EvaluationReport:
    """Evaluate ``models`` (loaded with :func:`apollo_cli.load_model`) on clean music at several bitrates.

    Each clean WAV/FLAC/AIFF under ``clean_dir`` (``include`` globs and ``max_files`` as
    ``apollo batch``'s) gives a ``segment_seconds`` segment at 44.1 kHz, encoded with
    ``codec`` (``mp3``, ``aac``, ``opus``) at each of ``bitrates`` (kbps) by ffmpeg, decoded,
    checked for alignment, restored by each model with ``options`` and scored with
    ``metrics`` (default: SI-SNR, SDR, LSD, and ViSQOL when ``visqol-python`` is
    installed). ``group_by`` names a tag (``genre``) whose value groups the files.
    Results are cached in ``report_dir`` (default ``CLEAN_DIR-evaluation``), where
    ``scores.csv`` and ``report.json`` are written at the end; a second run redoes
    nothing. Everything that can be checked is checked before any work: the codec,
    bitrates, ffmpeg and its encoder, the metrics, the options on each model's device.
    """
    chosen_codec = coding.get_codec(codec)
    rates = coding.check_bitrates(chosen_codec, bitrates)
    wanted = scoring.parse_metrics(metrics)
    visqol_missing = metrics is None and "visqol" not in wanted
    check_seconds(segment_seconds)
    options = options or RestoreOptions()
    ffmpeg = coding.require_encoder(chosen_codec)
    for model in models:
        options.check(next(model.parameters()).device)
    report_path = Path(report_dir) if report_dir is not None else default_report_dir(clean_dir)
    references = find_references(clean_dir, include=include, max_files=max_files, exclude=report_path)
    check_readable(references)
    prepare_report_dir(report_path, Path(clean_dir))
    store = Store(report_path)
    entries = _identify(models, options)
    scorer = scoring.Scorer(wanted)
    timings = dict.fromkeys(("segment", "encode", "decode", "align", "restore", "score", "visqol"), 0.0)
    counts = {"encoded": 0, "restored": 0, "scored": 0}

    @contextlib.contextmanager
    def timed(stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            timings[stage] += time.perf_counter() - began

    def score(name: str, reference: np.ndarray, estimate: np.ndarray, have: dict[str, float]) -> None:
        for metric in wanted:
            if metric not in have:
                with timed("visqol" if metric == "visqol" else "score"):
                    have[metric] = scorer.one(metric, reference, estimate, SAMPLE_RATE)
        store.write_scores(name, have)
        counts["scored"] += 1

    rows: list[Row] = []
    total = len(references) * len(rates) * max(len(entries), 1)
    done = 0
    for reference in references:
        file_key = key("segment", content_hash(reference.path), f"{segment_seconds:g}")
        group = _group(reference, group_by)
        segment: Segment | None = None
        start, seconds = _segment_info(store, file_key)

        def the_segment(reference: Reference = reference, file_key: str = file_key) -> Segment:
            nonlocal segment, start, seconds
            if segment is None:
                with timed("segment"):
                    segment = choose_segment(reference.path, segment_seconds)
                start, seconds = segment.start, segment.seconds
                _write_segment_info(store, file_key, segment)
            return segment

        for kbps in rates:
            coded_key = key(file_key, chosen_codec.name, kbps)
            names = {CODEC: coded_key, **{e.label: key(coded_key, e.key) for e in entries}}
            have = {system: store.read_scores(name) for system, name in names.items()}
            missing = [system for system in names if not set(wanted) <= set(have[system])]
            if missing:
                clean = the_segment().samples
                target = store.coded_path(coded_key, chosen_codec.extension)
                if not target.is_file():
                    with timed("encode"):
                        coding.encode(ffmpeg, clean, SAMPLE_RATE, chosen_codec, kbps, target)
                    counts["encoded"] += 1
                with timed("decode"):
                    decoded = coding.decode(target)
                with timed("align"):
                    what = f"{reference.name} at {kbps} kbps {chosen_codec.name.upper()}"
                    coded = alignment.align(clean, decoded, SAMPLE_RATE, what)
                if CODEC in missing:
                    score(coded_key, clean, coded, have[CODEC])
                for entry in entries:
                    if entry.label in missing:
                        restored = store.read_audio("restored", names[entry.label])
                        if restored is None:
                            with timed("restore"):
                                restored = api.restore(entry.model, coded, SAMPLE_RATE, options)
                            store.write_audio("restored", names[entry.label], restored, SAMPLE_RATE)
                            counts["restored"] += 1
                        score(names[entry.label], clean, restored[:, : clean.shape[1]], have[entry.label])
            for system in names:
                scores = {m: have[system][m] for m in wanted}
                rows.append(Row(reference.name, kbps, system, scores, start, seconds, group))
            for label in [e.label for e in entries] or [""]:
                done += 1
                if progress is not None:
                    progress(done, total, f"{reference.name} {kbps} kbps {label}".rstrip())

    report = EvaluationReport(
        report_dir=report_path,
        codec=chosen_codec.name,
        bitrates=rates,
        systems=(CODEC, *(e.label for e in entries)),
        metrics=wanted,
        rows=rows,
        files=tuple(r.name for r in references),
        group_by=group_by,
        models={e.label: e.identity for e in entries},
        timings=timings,
        counts=counts,
        visqol_missing=visqol_missing,
    )
    report.write()
    return report


def _identify(models: Sequence[Apollo], options: RestoreOptions) -> list[_Model]:
    """Each model's label (unique), identity (what its outputs depend on) and cache key."""
    entries: list[_Model] = []
    labels: set[str] = set()
    for model in models:
        source = getattr(model, "source", None)
        if source is not None:
            name = os.path.basename(source.reference) if Path(source.reference).exists() else source.reference
            digest = source.sha256
        else:  # built in code: its weights are its identity
            name = "model"
            hasher = hashlib.sha256()
            for tensor in model.state_dict().values():
                hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            digest = hasher.hexdigest()
        label, n = name, 2
        while label in labels or label == CODEC:
            label, n = f"{name}#{n}", n + 1
        labels.add(label)
        identity = f"{name} sha256:{digest[:12]}; {options.describe()}"
        entries.append(_Model(label, model, identity, key(digest, options.describe())))
    return entries


def _group(reference: Reference, tag: str | None) -> str | None:
    """The file's value of ``tag`` (its first), or ``(no TAG)``."""
    if tag is None:
        return None
    values = tags.read_tags(reference.path).fields.get(tag.strip().lower(), [])
    return values[0] if values else f"(no {tag})"


def _segment_info(store: Store, file_key: str) -> tuple[float, float]:
    """Where a cached segment starts and how long it is (``nan`` before it was ever cut)."""
    try:
        data = json.loads(store.path("segments", file_key + ".json").read_text(encoding="utf-8"))
        return float(data["start"]), float(data["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("nan"), float("nan")


def _write_segment_info(store: Store, file_key: str, segment: Segment) -> None:
    target = store.path("segments", file_key + ".json")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create {target.parent}: {exc.strerror or exc}; choose another -o"
        ) from None
    write_text(target, json.dumps({"start": segment.start, "seconds": segment.seconds}))


def prepare_report_dir(report_dir: Path, clean_dir: Path) -> None:
    """Make the report folder, after checking it is not a file nor the clean folder itself."""
    if report_dir.exists() and not report_dir.is_dir():
        raise OutputError(f"{report_dir} exists and is not a folder; choose a report folder with -o")
    if report_dir.resolve() == clean_dir.resolve():
        raise OutputError("the report folder is the clean folder; choose another with -o")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the report folder {report_dir}: {exc.strerror or exc}; choose another with -o"
        ) from None
