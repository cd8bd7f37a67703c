"""Choosing the compute device, and the device lists of a batch."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from .errors import DeviceError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` into an available device.

    ``auto`` picks CUDA, then MPS, then the CPU. Naming a device that this machine
    does not have raises :class:`DeviceError`.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    match = _DEVICE_RE.match(text)
    if not match:
        raise DeviceError(f"unknown device '{spec}'; use auto, cpu, cuda, cuda:N or mps")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cpu":
        if index not in (None, "0"):
            raise DeviceError(f"unknown device '{spec}'; the CPU is 'cpu'")
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise DeviceError("device 'mps' is not available here (Apple silicon only); use --device cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device '{spec}' is not available: this PyTorch sees no CUDA GPU "
            f"(CUDA build: {torch.version.cuda or 'no'}); use --device cpu"
        )
    count = torch.cuda.device_count()
    ordinal = int(index) if index is not None else torch.cuda.current_device()
    if ordinal >= count:
        raise DeviceError(
            f"device '{spec}' does not exist: {count} CUDA device(s) here, cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", ordinal)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def parse_devices(spec: str | Sequence[str | torch.device] = "auto") -> list[torch.device]:
    """Devices for a batch: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a comma list.

    A lone ``cuda`` (or ``auto`` on a machine with CUDA) means every visible GPU. A list
    (``cuda:0,cuda:1``; ``cpu,cpu`` for two CPU workers) gives one worker per entry;
    each entry is checked by :func:`apollo_cli.devices.resolve_device`.
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    if not items or any(not item for item in items):
        raise DeviceError(f"invalid device list '{spec}'; use e.g. cuda:0,cuda:1 (no empty entries)")
    if len(items) == 1 and items[0].lower() in ("auto", "cuda"):
        device = resolve_device(items[0])
        if device.type == "cuda":
            return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return [device]
    return [resolve_device(item) for item in items]


def describe_devices(devices: Sequence[torch.device | str]) -> str:
    """``cuda:0, cuda:1`` or ``2 × cpu``."""
    names = [str(d) for d in devices]
    if len(set(names)) == 1 and len(names) > 1:
        return f"{len(names)} × {names[0]}"
    return ", ".join(names)
