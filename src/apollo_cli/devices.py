"""Choosing the compute device."""

from __future__ import annotations

import re

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
