"""Restore a whole folder tree: planning, sharding, and a pipelined runner.

Two steps, both usable from Python::

    from apollo_cli import batch, load_model
    plan = batch.plan_batch("Music", shard=batch.parse_shard("1/4"))
    summary = batch.run_batch(plan, load_model(), devices=["cuda:0", "cuda:1"])

Each concern has its module; every public name is also available here, as
``apollo_cli.batch.NAME``:

- :mod:`.shards`: ``--shard K/N``, :func:`shard_of` (a file's shard, from its path alone).
- :mod:`.plan`: :func:`plan_batch` finds the audio files under a folder and decides, for
  each, where its output goes, whether it is already done, whether it clashes with
  another file, and whether it belongs to this shard. It touches nothing.
- :mod:`.events`: what a running batch reports (:data:`BatchEvent`) and its
  :class:`BatchSummary`.
- :mod:`.runner`: :func:`run_batch` carries a plan out with one model per device,
  decoding, inference and writing overlapped; stopped at any moment, it can simply be
  run again.
- :mod:`.ray_runner`: :func:`run_batch_ray` carries the same plan out on a Ray cluster
  (``pip install 'apollo-cli[ray]'``); imported when first used, so this package does not
  need Ray. Its workers are :mod:`.ray_worker`'s actors.

Device lists (``cuda:0,cuda:1``) are parsed by :mod:`apollo_cli.devices`, re-exported here.
To change a module's setting (``PREFETCH_SECONDS``, say), set it on the module that owns
it (:mod:`.runner`): the names here are copies.
"""

from __future__ import annotations

from .. import signals
from ..devices import describe_devices, parse_devices
from .events import (
    BatchEvent,
    BatchInterrupted,
    BatchSummary,
    EventCallback,
    FileDone,
    FileFailed,
    FileProgress,
    FileSkipped,
    FileStarted,
    Stopping,
    WorkerLost,
    WorkerReady,
)
from .plan import (
    AUDIO_EXTENSIONS,
    OUTPUT_FORMATS,
    BatchPlan,
    Collision,
    Job,
    check_output_dir,
    default_output_dir,
    plan_batch,
)
from .runner import PREFETCH_SECONDS, check_bit_depth, plan_summary, replicate, run_batch
from .shards import Shard, output_key, parse_shard, shard_of


def __getattr__(name: str) -> object:
    """``run_batch_ray``, imported when first asked for: it needs Ray, an optional extra."""
    if name == "run_batch_ray":
        from .ray_runner import run_batch_ray

        return run_batch_ray
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Kept for callers of earlier versions; defined in :mod:`apollo_cli.signals`.
INTERRUPT_LIKE_CTRL_C = signals.INTERRUPT_LIKE_CTRL_C

__all__ = [
    "AUDIO_EXTENSIONS",
    "INTERRUPT_LIKE_CTRL_C",
    "OUTPUT_FORMATS",
    "PREFETCH_SECONDS",
    "BatchEvent",
    "BatchInterrupted",
    "BatchPlan",
    "BatchSummary",
    "Collision",
    "EventCallback",
    "FileDone",
    "FileFailed",
    "FileProgress",
    "FileSkipped",
    "FileStarted",
    "Job",
    "Shard",
    "Stopping",
    "WorkerLost",
    "WorkerReady",
    "check_bit_depth",
    "check_output_dir",
    "default_output_dir",
    "describe_devices",
    "output_key",
    "parse_devices",
    "parse_shard",
    "plan_batch",
    "plan_summary",
    "replicate",
    "run_batch",
    "shard_of",
]
