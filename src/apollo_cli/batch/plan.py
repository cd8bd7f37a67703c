"""Planning a batch: which files to restore, where each output goes, and what is skipped.

:func:`plan_batch` finds the audio files under a folder and decides, for each, where its
output goes (the mirror of its relative path under the output folder), whether it is
already done (its output exists), whether it clashes with another file, and whether
it belongs to this shard. It touches nothing.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import audio, tags
from ..errors import InputError, OptionError, OutputError
from .shards import Shard, output_key

#: Extensions of the files a batch picks up (any case). Content decides how they are
#: decoded; the extension only decides what is looked at.
#: What ``apollo batch`` picks up: the audio formats libsndfile and ffmpeg read, in the
#: containers music comes in (``.webm`` and ``.mka`` as yt-dlp saves Opus and Vorbis,
#: ``.m4b`` audiobooks). Video containers (``.mkv``, ``.mp4``) are left out: a library's
#: videos are not its music; ``apollo restore`` takes them one at a time.
AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".mp2", ".wav", ".w64", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".m4b", ".aac",
     ".wma", ".aiff", ".aif", ".aifc", ".webm", ".mka", ".ac3", ".wv", ".ape", ".caf"}
)  # fmt: skip
#: Output formats by the name ``--format`` takes: their extension (``{"flac": ".flac", ...}``).
OUTPUT_FORMATS = {fmt.lower(): suffix for suffix, fmt in audio.OUTPUT_FORMATS.items()}


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    source: Path
    relative: PurePosixPath
    output: Path

    @property
    def name(self) -> str:
        """The input's path relative to the input folder, for messages."""
        return self.relative.as_posix()


@dataclass(frozen=True)
class Collision:
    """Inputs that would all be written to one ``output``; none of them is restored."""

    output: Path
    jobs: tuple[Job, ...]
    reason: str


@dataclass(frozen=True)
class BatchPlan:
    """What a batch will do; see :func:`plan_batch`."""

    input_dir: Path
    output_dir: Path
    format: str
    #: Files to restore, in order of their relative paths.
    jobs: tuple[Job, ...]
    #: Files whose output exists (kept; pass ``overwrite`` to redo them).
    skipped: tuple[Job, ...]
    #: Inputs that would overwrite each other's output (or an input); not restored.
    collisions: tuple[Collision, ...]
    #: Folders that could not be listed, with the reason; their files are not included.
    unreadable: tuple[tuple[str, str], ...]
    #: Audio files found (in every shard).
    found: int
    shard: Shard | None
    overwrite: bool
    #: Inputs that cannot be read at all (a dangling symbolic link), with the reason.
    unusable: tuple[tuple[Job, str], ...] = ()
    #: Inputs left alone because they are apollo-cli's own restorations (``skip_restored``).
    already_restored: tuple[Job, ...] = ()

    @property
    def problems(self) -> list[tuple[str, str]]:
        """``(name, reason)`` for every input the plan cannot restore."""
        rows = [(job.name, c.reason) for c in self.collisions for job in c.jobs]
        rows += [(job.name, reason) for job, reason in self.unusable]
        return rows + [(f"{name}/", reason) for name, reason in self.unreadable]


def default_output_dir(input_dir: str | os.PathLike[str]) -> Path:
    """``INPUT_DIR-restored`` beside the input folder."""
    resolved = Path(input_dir).resolve()
    if not resolved.name:
        raise OptionError(f"cannot put the output beside {resolved}; pass an output folder with -o")
    return resolved.with_name(f"{resolved.name}-restored")


def plan_batch(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str] | None = None,
    *,
    fmt: str = "flac",
    recursive: bool = True,
    include: Iterable[str] = (),
    shard: Shard | None = None,
    overwrite: bool = False,
    skip_restored: bool = False,
) -> BatchPlan:
    """Find the audio files under ``input_dir`` and decide what to do with each.

    Each file (by extension, see :data:`AUDIO_EXTENSIONS`; hidden files and folders,
    whose names start with a dot, are left out) maps to the mirror of its relative path
    under ``output_dir`` (default ``INPUT_DIR-restored`` beside the input), with the
    extension of ``fmt``. ``include`` patterns (any matches; case-insensitive) keep only
    some files: a pattern without ``/`` is matched against the file name, one with ``/``
    against the path relative to ``input_dir``. Outputs that exist are skipped unless
    ``overwrite``. Inputs whose outputs would coincide (``song.mp3`` and ``song.flac``)
    are collisions: none of them is restored. Nothing is written.

    An input is never written to, wherever it lives. When ``output_dir`` lies inside
    ``input_dir`` (it is then not searched), a file already at an output path counts as
    an earlier output only if it carries apollo-cli's provenance tag (see
    :func:`apollo_cli.tags.has_provenance`); any other file there is an original, and
    its input is reported as a problem instead of being skipped or overwritten.

    With ``skip_restored``, inputs that carry apollo-cli's provenance tag (restorations
    themselves, copied into the library) are left alone: see ``already_restored``.
    """
    source_dir = Path(input_dir)
    if not source_dir.exists():
        raise InputError(f"input folder {source_dir} does not exist; check the path")
    if not source_dir.is_dir():
        raise InputError(f"{source_dir} is not a folder; use 'apollo restore' for a single file")
    suffix = OUTPUT_FORMATS.get(fmt.lower())
    if suffix is None:
        raise OptionError(f"unknown output format '{fmt}'; use flac or wav")
    target_dir = Path(output_dir) if output_dir is not None else default_output_dir(source_dir)
    if target_dir.exists() and not target_dir.is_dir():
        raise OutputError(f"output {target_dir} exists and is not a folder; choose an output folder")
    real_source, real_target = source_dir.resolve(), target_dir.resolve()
    if real_source == real_target:
        raise OutputError(
            f"the output folder is the input folder ({source_dir}); choose another with -o "
            "so inputs are never overwritten"
        )
    patterns = [p.strip() for p in include if p.strip()]

    found: list[PurePosixPath] = []
    unreadable: list[tuple[str, str]] = []

    def walk_error(exc: OSError) -> None:
        where = Path(exc.filename or source_dir)
        try:
            name = where.relative_to(source_dir).as_posix()
        except ValueError:
            name = str(where)
        unreadable.append(
            (name, f"cannot list this folder ({exc.strerror or exc}); its files were not included")
        )

    for dirpath, dirnames, filenames in os.walk(source_dir, onerror=walk_error):
        here = Path(dirpath)
        # Never descend into hidden folders or into the output folder (when it is inside
        # the input): a re-run must not restore its own outputs.
        dirnames[:] = (
            sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != real_target)
            if recursive
            else []
        )
        for filename in filenames:
            if filename.startswith(".") or Path(filename).suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            relative = PurePosixPath((here / filename).relative_to(source_dir).as_posix())
            if included(relative, patterns):
                found.append(relative)

    mine = [rel for rel in found if shard is None or rel in shard]
    groups: dict[str, list[Job]] = {}
    unusable: list[tuple[Job, str]] = []
    for rel in sorted(mine, key=lambda r: r.as_posix()):
        job = Job(source_dir / rel, rel, target_dir / rel.with_suffix(suffix))
        dangling = _dangling_link(job.source)
        if dangling is not None:
            unusable.append((job, dangling))
            continue
        groups.setdefault(output_key(rel), []).append(job)

    # Outputs landing on an input can only happen when the output folder holds the input.
    inputs = (
        {(source_dir / rel).resolve() for rel in found} if _is_within(real_source, real_target) else set()
    )
    jobs: list[Job] = []
    skipped: list[Job] = []
    restored: list[Job] = []
    collisions: list[Collision] = []
    for group in groups.values():
        if skip_restored and len(group) == 1 and tags.has_provenance(group[0].source):
            restored.append(group[0])
            continue
        if len(group) > 1:
            names = ", ".join(job.relative.name for job in group)
            collisions.append(Collision(
                group[0].output, tuple(group),
                f"{names} would all be written to {group[0].relative.with_suffix(suffix).name}; "
                "none was restored (rename one, or pick one with --include)",
            ))  # fmt: skip
            continue
        job = group[0]
        if inputs and job.output.resolve() in inputs:
            collisions.append(Collision(
                job.output, (job,), f"its output {job.output} is an input file; choose another output folder"
            ))  # fmt: skip
        elif job.output.exists() and not job.output.is_dir():
            in_the_way = not_an_output(source_dir, target_dir, job)
            if in_the_way is not None:
                collisions.append(Collision(job.output, (job,), in_the_way))
            elif not overwrite:
                skipped.append(job)
            else:
                jobs.append(job)
        else:
            jobs.append(job)
    jobs.sort(key=lambda j: j.name)
    skipped.sort(key=lambda j: j.name)
    restored.sort(key=lambda j: j.name)
    return BatchPlan(
        input_dir=source_dir,
        output_dir=target_dir,
        format=audio.output_format(f"x{suffix}"),
        jobs=tuple(jobs),
        skipped=tuple(skipped),
        collisions=tuple(collisions),
        unreadable=tuple(sorted(unreadable)),
        found=len(found),
        shard=shard,
        overwrite=overwrite,
        unusable=tuple(unusable),
        already_restored=tuple(restored),
    )


def _dangling_link(path: Path) -> str | None:
    """Why ``path`` cannot be read if it is a symbolic link to nothing (or a loop); else None."""
    try:
        if not path.is_symlink() or path.exists():
            return None
        target = os.readlink(path)
    except OSError:
        return None
    return f"a symbolic link to {target}, which does not exist; nothing to restore (fix or remove the link)"


def not_an_output(input_dir: Path, output_dir: Path, job: Job) -> str | None:
    """Why the existing file at ``job.output`` must be left alone, if it must; else None.

    Only when the output folder lies inside the input folder: a file there was put
    there by someone (an original, say) unless it carries apollo-cli's provenance tag,
    and an input is never written to, not even when it was not searched.
    """
    if not _is_within(output_dir.resolve(), input_dir.resolve()) or tags.has_provenance(job.output):
        return None
    return (
        f"{job.output} already exists and was not written by apollo-cli (it has no {tags.PROVENANCE_KEY} tag), "
        f"so it is treated as an input and never replaced; move it, or choose an output folder outside {input_dir}"
    )


def check_output_dir(output_dir: str | os.PathLike[str]) -> None:
    """Fail with one line, before any work, if ``output_dir`` cannot be created or written to.

    Creates nothing: a folder that does not exist yet needs its nearest existing parent
    to be a writable folder. (:func:`run_batch` creates it when there is work to do.)
    """
    target = Path(output_dir)
    here = target
    while not here.exists() and not here.is_symlink() and here != here.parent:
        here = here.parent
    if here == target:
        if not target.is_dir():
            raise OutputError(f"output {target} exists and is not a folder; choose an output folder")
    elif not here.is_dir():
        raise OutputError(
            f"cannot create the output folder {target}: {here} is not a folder; choose another with -o"
        )
    if not os.access(here, os.W_OK | os.X_OK):
        what = (
            "the output folder"
            if here == target
            else f"{here}, where the output folder {target} would be made,"
        )
        raise OutputError(f"{what} is not writable; choose another output folder with -o")


def included(relative: PurePosixPath, patterns: Sequence[str]) -> bool:
    """Whether a file at ``relative`` (to the searched folder) matches ``--include`` ``patterns``.

    No patterns: every file. A pattern without ``/`` matches the file name, one with
    ``/`` the whole relative path; case-insensitively, with ``fnmatch``'s wildcards.
    """
    if not patterns:
        return True
    name, path = relative.name.casefold(), relative.as_posix().casefold()
    for pattern in patterns:
        folded = pattern.casefold()
        if "/" not in folded:
            if fnmatch.fnmatchcase(name, folded):
                return True
            continue
        folded = folded.lstrip("/")
        # fnmatch's * also matches "/", so "Artist/*" is everything under Artist;
        # "**/live/*" should also match at the top level.
        candidates = [folded] + ([folded[3:]] if folded.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(path, c) for c in candidates):
            return True
    return False


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents
