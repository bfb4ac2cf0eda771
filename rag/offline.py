"""Keep every library Kura uses off the network: nothing leaves the machine unless the user opts in."""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def decline_openvino_telemetry() -> None:
    """Make OpenVINO's telemetry see a declined consent in this process.

    nncf and the OpenVINO converter treat a missing consent file as consent and report usage to an
    analytics service (the test guard caught it during ``models prepare``). This answers "declined"
    for Kura's own process only, without writing to the user's home folder.
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return

    def declined(self: object, *args: object, **kwargs: object) -> ConsentCheckResult:
        return ConsentCheckResult.DECLINED

    OptInChecker.check = declined


def apply_offline_environment() -> None:
    """Call first thing in a process: several libraries read these variables once, on import."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    decline_openvino_telemetry()


def allow_model_download() -> None:
    """The user's explicit opt-in (``network.allow_model_download``) to fetch an HF id once."""
    os.environ["HF_HUB_OFFLINE"] = "0"
    os.environ["TRANSFORMERS_OFFLINE"] = "0"
