"""The llama.cpp that the tests and ``kura bench`` use holds no instruction outside what every host of this kind has.

A native build on an Intel Xeon with AMX emitted AMX tile code that faulted on the first matmul
(``ldtilecfg``: general protection fault), and a build with AVX-512 died with SIGILL on an AMD EPYC host
without it. The Makefile now sets the instruction set explicitly (x86-64-v3); these checks read the built
library itself, so they hold whichever CPU the suite runs on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

# What every AMD EPYC and Intel Xeon host of this kind has (the Makefile's LLAMA_CMAKE_ARGS): x86-64-v3.
ALLOWED = {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
# Feature names llama.cpp's system line reports that are instruction sets (the rest are build options).
ISA = ALLOWED | {"AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AVX512_FP16"}
ISA |= {"AMX_INT8", "AMX_BF16", "AMX_TILE", "SVE", "NEON", "ARM_FMA", "RISCV_V"}
AMX_MNEMONICS = re.compile(r"\s(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tilerelease|tilezero|tdp\w+)\s")
# AVX-512 is the only x86 extension with 512-bit zmm registers.
ZMM = re.compile(r"%zmm\d+")


def _llama_libs() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None and spec.origin, "llama-cpp-python is not installed (make test installs it)"
    libs = sorted((Path(spec.origin).parent / "lib").glob("libggml*.so*"))
    assert libs, f"no ggml libraries under {Path(spec.origin).parent / 'lib'}"
    return libs


def test_no_amx_or_avx512_instruction_in_the_built_libraries() -> None:
    objdump = shutil.which("objdump")
    assert objdump, "objdump (binutils) is needed to read the build"
    for lib in _llama_libs():
        listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True)
        assert listing.returncode == 0, listing.stderr
        found = sorted(set(AMX_MNEMONICS.findall(listing.stdout)))
        assert not found, f"{lib.name} holds AMX instructions: {found}"
        assert not ZMM.search(listing.stdout), f"{lib.name} holds AVX-512 instructions (zmm registers)"


def test_the_build_reports_no_instruction_set_outside_the_common_one() -> None:
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    enabled = set(re.findall(r"(\w+) = 1", result.stdout)) & ISA
    assert "AVX2" in enabled, result.stdout
    assert enabled <= ALLOWED, f"outside the common set: {sorted(enabled - ALLOWED)} ({result.stdout.strip()})"
