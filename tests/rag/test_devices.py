from __future__ import annotations

import logging

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from rag.devices import device_chain, with_fallback
from rag.errors import KuraError
from tests.helpers import assert_follows_chain, first_usable


def tiny_model() -> ov.Model:
    x = ops.parameter([1, 4], np.float32, name="x")
    return ov.Model([ops.relu(x)], [x], "tiny")


def test_chain_keeps_order_without_repeats() -> None:
    assert device_chain("NPU", ["GPU", "CPU", "GPU"]) == ["NPU", "GPU", "CPU"]


def test_the_first_device_of_the_chain_this_machine_has_is_chosen_with_reasons(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = ov.Core()
    chain = ["NPU", "GPU", "CPU"]
    caplog.set_level(logging.DEBUG, logger="kura.devices")
    compiled, choice = with_fallback("probe", core, chain, lambda d: core.compile_model(tiny_model(), d))
    assert_follows_chain(choice, chain)
    assert choice.device == first_usable(chain)
    assert ("fallback" in choice.explain()) == bool(choice.skipped)
    out = compiled({"x": np.array([[-1, 2, -3, 4]], dtype=np.float32)})[0]
    assert out.tolist() == [[0, 2, 0, 4]]
    lines = [r.getMessage() for r in caplog.records]
    for (device, _), following in zip(choice.skipped, chain[1:], strict=False):
        assert any(
            line.startswith(f"probe: {device} unavailable (") and line.endswith(f"-> {following}") for line in lines
        )


def test_a_device_no_machine_has_falls_through_to_the_next_with_its_reason() -> None:
    core = ov.Core()
    _, choice = with_fallback("probe", core, ["NOSUCHDEVICE", "CPU"], lambda d: core.compile_model(tiny_model(), d))
    assert choice.device == "CPU"
    assert [device for device, _ in choice.skipped] == ["NOSUCHDEVICE"]
    assert choice.skipped[0][1] and "(fallback; NOSUCHDEVICE: " in choice.explain()


def test_compile_failure_falls_through_and_reports() -> None:
    core = ov.Core()

    def load(device: str) -> str:
        raise RuntimeError(f"cannot compile on {device}\nsecond line")

    with pytest.raises(KuraError, match=r"no configured device could run the model .*CPU: compile failed: second line"):
        with_fallback("probe", core, ["GPU", "CPU"], load)


class ListingCore:
    """Only the device list of an OpenVINO core, as a machine with two Intel GPUs reports it."""

    available_devices = ("CPU", "GPU.0", "GPU.1", "NPU")

    def get_property(self, device: str, name: str) -> None:
        raise RuntimeError(f"{device} plugin not present")


@pytest.mark.parametrize(("device", "usable"), [("GPU", True), ("GPU.1", True), ("GPU.2", False), ("NPU", True)])
def test_a_bare_device_name_matches_its_numbered_instances(device: str, usable: bool) -> None:
    from rag.devices import unavailable_reason

    reason = unavailable_reason(ListingCore(), device)
    assert (reason is None) is usable, reason
