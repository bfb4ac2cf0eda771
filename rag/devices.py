"""Choosing an OpenVINO device: the configured one first, then its fallbacks, with the reason logged.

``AUTO:NPU,GPU,CPU`` fails hard when a listed plugin cannot load instead of moving on, so Kura walks
the chain itself and says why each device was passed over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import openvino as ov

from rag.errors import KuraError, short_reason

log = logging.getLogger("kura.devices")
T = TypeVar("T")


@dataclass
class DeviceChoice:
    """Where a model runs and why the devices before it were not used."""

    device: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def explain(self) -> str:
        if not self.skipped:
            return f"{self.device} (as configured)"
        reasons = "; ".join(f"{dev}: {why}" for dev, why in self.skipped)
        return f"{self.device} (fallback; {reasons})"


def device_chain(preferred: str, fallback: Sequence[str]) -> list[str]:
    """The configured device followed by its fallbacks, without repeats."""
    chain: list[str] = []
    for dev in [preferred, *fallback]:
        if dev not in chain:
            chain.append(dev)
    return chain


_said: set[str] = set()


def unavailable_reason(core: ov.Core, device: str) -> str | None:
    """Why ``device`` cannot be used, or None when OpenVINO lists it."""
    available = core.available_devices
    # With two GPUs OpenVINO lists only GPU.0 and GPU.1; a bare GPU then means the first of them.
    if device in available or ("." not in device and any(a.split(".")[0] == device for a in available)):
        return None
    try:
        core.get_property(device.split(".")[0], "SUPPORTED_PROPERTIES")
    except Exception as exc:  # the plugin's own load error is the most useful reason
        return short_reason(exc)
    return f"no such device found (OpenVINO lists: {', '.join(available) or 'none'})"


def with_fallback(role: str, core: ov.Core, chain: Sequence[str], load: Callable[[str], T]) -> tuple[T, DeviceChoice]:
    """Run ``load(device)`` on the first device of ``chain`` that is present and compiles."""
    skipped: list[tuple[str, str]] = []
    for position, device in enumerate(chain):
        reason = unavailable_reason(core, device)
        if reason is None:
            try:
                return load(device), DeviceChoice(device, skipped)
            except Exception as exc:
                reason = f"compile failed: {short_reason(exc)}"
        skipped.append((device, reason))
        following = chain[position + 1] if position + 1 < len(chain) else "nothing left"
        line = f"{role}: {device} unavailable ({reason}) -> {following}"
        if line not in _said:  # say it once per process, not on every reload
            _said.add(line)
            log.debug(line)  # `kura doctor` and `-v` show it; every command would repeat it
    tried = "; ".join(f"{dev}: {why}" for dev, why in skipped)
    raise KuraError(f"{role}: no configured device could run the model ({tried}); add CPU to the fallback list")
