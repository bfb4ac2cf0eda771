from __future__ import annotations

import logging

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from rag.devices import device_chain, with_fallback
from rag.errors import KuraError


def tiny_model() -> ov.Model:
    x = ops.parameter([1, 4], np.float32, name="x")
    return ov.Model([ops.relu(x)], [x], "tiny")


def test_chain_keeps_order_without_repeats() -> None:
    assert device_chain("NPU", ["GPU", "CPU", "GPU"]) == ["NPU", "GPU", "CPU"]


def test_npu_and_gpu_fall_back_to_cpu_with_reasons(caplog: pytest.LogCaptureFixture) -> None:
    core = ov.Core()
    assert core.available_devices == ["CPU"], "this suite expects a machine with no NPU or GPU"
    caplog.set_level(logging.INFO, logger="kura.devices")
    compiled, choice = with_fallback(
        "probe", core, ["NPU", "GPU", "CPU"], lambda d: core.compile_model(tiny_model(), d)
    )
    assert choice.device == "CPU"
    assert [device for device, _ in choice.skipped] == ["NPU", "GPU"]
    assert all(reason for _, reason in choice.skipped)
    assert "fallback" in choice.explain()
    out = compiled({"x": np.array([[-1, 2, -3, 4]], dtype=np.float32)})[0]
    assert out.tolist() == [[0, 2, 0, 4]]
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("probe: NPU unavailable (") and line.endswith("-> GPU") for line in lines)
    assert any(line.startswith("probe: GPU unavailable (") and line.endswith("-> CPU") for line in lines)


def test_compile_failure_falls_through_and_reports() -> None:
    core = ov.Core()

    def load(device: str) -> str:
        raise RuntimeError(f"cannot compile on {device}\nsecond line")

    with pytest.raises(KuraError, match=r"no configured device could run the model .*CPU: compile failed: second line"):
        with_fallback("probe", core, ["GPU", "CPU"], load)
