"""The worker side of ``apollo batch --ray``: a Ray actor that restores files sent as bytes.

A :class:`Worker` loads the model once (from checkpoint bytes the driver sent, or a path
every node sees) and restores one file at a time: it writes the input's bytes into its
own scratch folder, decodes and restores them with the batch's
:class:`~apollo_cli.RestoreOptions` as the local runner does (short files in memory,
long ones streamed), encodes the output there (tags and provenance included) and returns
the finished file's bytes. It never touches the driver's files: the driver
(:mod:`.ray_runner`) claims and writes the outputs.

Ray is an optional dependency (``pip install 'apollo-cli[ray]'``); importing this module
without it raises :class:`~apollo_cli.errors.MissingDependencyError`.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import audio, tags
from ..errors import ApolloError, MissingDependencyError
from ..options import RestoreOptions
from ..provenance import ModelSource
from .runner import PREFETCH_SECONDS, _reason, decode_whole

#: The one line that says Ray is missing and what to install (this module and
#: :mod:`.ray_runner` raise it on import without Ray).
MISSING = "--ray needs Ray, which is not installed: pip install 'apollo-cli[ray]'"

try:
    import ray
except ImportError:  # pragma: no cover - the tests that need Ray skip without it
    raise MissingDependencyError(MISSING) from None


@dataclass(frozen=True)
class Identity:
    """What a worker says about itself once its model is loaded (or why it could not load it)."""

    pid: int
    node: str
    host: str
    device: str
    version: str
    error: tuple[str, str] | None  # (ApolloError subclass name, message)


@dataclass(frozen=True)
class Outcome:
    """One file's result from a worker: the finished output's bytes, or why there is none."""

    data: bytes | None
    result: Any  # api.RestoreResult (paths in the worker's scratch folder)
    reason: str | None
    no_space: bool = False


@dataclass
class _Described(ModelSource):
    """The model's source on a worker: described as the driver knows it, not as this copy is."""

    description: str = ""

    def describe(self) -> str:
        """The driver's description (the name it was loaded by, the checkpoint's hash)."""
        return self.description


class Cancelled(BaseException):
    """Abandons a file: raised by a worker's progress callback (the driver stopped), and by the
    driver inside a write that a second Ctrl-C drops."""


class Worker:
    """A Ray actor that holds one model and restores files sent as bytes (see the module's docstring).

    Its :meth:`restore` runs one file at a time; :meth:`progress` and :meth:`identity` answer
    at once from a separate thread (Ray concurrency group ``poll``).
    """

    def __init__(self) -> None:
        # The model is loaded by load(), which the driver calls again after Ray restarts a
        # worker: the checkpoint then comes from the driver, which keeps it alive.
        self.model: Any = None
        self.device = "cpu"
        self.scratch = Path(tempfile.mkdtemp(prefix=f"apollo-ray-{os.getpid()}-"))
        _remove_stale_scratch(self.scratch)
        self._current: tuple[int, float, float] | None = None
        self._cancel: int | None = None
        self._error: tuple[str, str] | None = None

    def load(
        self,
        checkpoint: bytes | str,
        checkpoint_name: str,
        model_description: str,
        options: RestoreOptions,
        use_gpu: bool,
        threads: int,
    ) -> Identity:
        """Load the model (once) from the checkpoint's bytes, or its path on this node; say who we are."""
        if self.model is not None or self._error is not None:
            return self._identity()
        import torch

        from .. import api

        self.options = options
        self.device = "cuda" if use_gpu else "cpu"
        if not use_gpu:
            # Ray gives a CPU actor its share of the node's cores; torch would take all of them.
            torch.set_num_threads(max(1, threads))
        try:
            if isinstance(checkpoint, bytes):
                folder = self.scratch / "model"
                folder.mkdir(exist_ok=True)
                path = folder / checkpoint_name
                path.write_bytes(checkpoint)
                try:
                    model = api.load_model(path, device=self.device)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
            else:
                model = api.load_model(checkpoint, device=self.device)
            # The outputs' provenance names the model as the driver knows it, not this copy.
            model.source = _Described(
                checkpoint_name, None, Path(checkpoint_name), description=model_description
            )
            options.check(next(model.parameters()).device)
            self.model = model
        except ApolloError as exc:
            self._error = (type(exc).__name__, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the driver as one line
            self._error = ("ApolloError", _reason(exc))
        return self._identity()

    @ray.method(concurrency_group="poll")
    def identity(self) -> Identity:
        """Who this worker is, and whether its model loaded."""
        return self._identity()

    def _identity(self) -> Identity:
        from .. import __version__

        device = str(next(self.model.parameters()).device) if self.model is not None else self.device
        return Identity(
            os.getpid(),
            ray.util.get_node_ip_address(),
            socket.gethostname(),
            device,
            __version__,
            self._error,
        )

    @ray.method(concurrency_group="poll")
    def progress(self) -> tuple[int, float, float] | None:
        """``(key, seconds done, seconds in all)`` of the file being restored, or None."""
        return self._current

    def restore(
        self,
        key: int,
        data: bytes,
        input_name: str,
        output_name: str,
        shown_input: str,
        shown_output: str,
        bit_depth: int,
        carry_tags: bool,
    ) -> Outcome:
        """Decode ``data`` (the input file's bytes), restore it and return the finished output's bytes.

        ``input_name`` and ``output_name`` are the files' names (what the formats are told
        by, what tag warnings name); messages name ``shown_input`` and ``shown_output``,
        the paths on the driver, rather than this worker's scratch files.
        """
        began = time.perf_counter()
        work = self.scratch / f"file-{key}"
        shutil.rmtree(work, ignore_errors=True)
        (work / "in").mkdir(parents=True)
        (work / "out").mkdir()
        source, target = work / "in" / input_name, work / "out" / output_name
        try:
            source.write_bytes(data)
            del data
            result = self._restore(key, source, target, bit_depth, carry_tags, began)
            return Outcome(target.read_bytes(), result, None)
        except Cancelled:
            return Outcome(None, None, "cancelled")
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch: say why, in one line
            reason = _reason(exc).replace(str(source), shown_input).replace(str(target), shown_output)
            return Outcome(None, None, reason, no_space=isinstance(exc, audio.NoSpaceError))
        finally:
            self._current = None
            shutil.rmtree(work, ignore_errors=True)

    def _restore(
        self, key: int, source: Path, target: Path, bit_depth: int, carry_tags: bool, began: float
    ) -> Any:
        """As the local runner does it: short files in memory, long ones streamed (bounded memory)."""
        from .. import api, provenance

        rate = self.model.config.sample_rate
        with audio.open_audio(source) as opened:
            audio.check_channels(target, opened.channels)
            carried = tags.read_tags(source) if carry_tags else tags.Tags()
            self._current = (key, 0.0, opened.duration or 0.0)
            progress = self._progress(key)
            if opened.duration is None or opened.duration > PREFETCH_SECONDS:
                return api.restore_source(
                    self.model, opened, target, carried, self.options, bit_depth=bit_depth,
                    overwrite=True, started=began, progress=progress,
                )  # fmt: skip
            samples, options, notes = decode_whole(opened, rate, self.options)
        self._current = (key, 0.0, samples.shape[-1] / rate)
        restored = api.restore(self.model, samples, rate, options, progress=progress)
        del samples
        return api.write_restored(
            source, target, restored, rate, carried, bit_depth=bit_depth, overwrite=True,
            started=began, provenance=provenance.describe(self.model, options), notes=notes,
        )  # fmt: skip

    def _progress(self, key: int) -> Any:
        rate = self.model.config.sample_rate

        def progress(done: int, total: int) -> None:
            if self._cancel == key:
                raise Cancelled
            self._current = (key, done / rate, total / rate)

        return progress

    @ray.method(concurrency_group="poll")
    def cancel(self, key: int) -> None:
        """Abandon file ``key`` at its next chunk, if it is the one being restored."""
        self._cancel = key


def _remove_stale_scratch(mine: Path) -> None:
    """Remove the scratch folders of workers on this node that were killed (their process is gone)."""
    for folder in mine.parent.glob("apollo-ray-*-*"):
        pid = folder.name.split("-")[2]
        if folder == mine or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue  # alive, or another user's


#: The actor class (``poll`` runs ``identity``, ``progress`` and ``cancel`` beside a restore).
RayWorker = ray.remote(concurrency_groups={"poll": 1})(Worker)  # type: ignore[call-overload]
