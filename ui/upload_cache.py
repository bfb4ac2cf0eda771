"""Gradio's upload cache, kept by Kura: under ``paths.uploads``, private, emptied on start and after each upload.

Gradio writes every file sent to ``/gradio_api/upload`` into its cache before any Kura handler runs, and
by default keeps it there (under the system temp folder) until someone deletes it. Kura points that cache at
``paths.uploads/.gradio`` (mode 0700; a collection name cannot start with a dot, so it never meets an
uploaded collection's folder), empties it when the server starts, removes each upload's files in a
``finally`` once the handler is done with them (refused or not), and has Gradio delete files that were
uploaded but never submitted after ``UNSUBMITTED_AGE_S``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rag.config import Settings

CACHE_FOLDER = ".gradio"
UNSUBMITTED_AGE_S = 3600  # an upload not submitted within an hour is abandoned
SWEEP_EVERY_S = 600


def cache_dir(settings: Settings) -> Path:
    return settings.resolve(settings.paths.uploads) / CACHE_FOLDER


def prepare_upload_cache(settings: Settings) -> Path:
    """An empty private cache, and Gradio told to use it; call before the page is built, since Gradio's
    components and app read ``GRADIO_TEMP_DIR`` when they are created."""
    cache = cache_dir(settings)
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(mode=0o700, parents=True)
    os.chmod(cache, 0o700)  # mkdir's mode is masked by the umask
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    return cache


def expire_unsubmitted(blocks: Any) -> None:
    """Have Gradio sweep uploads nobody submitted; set before ``launch`` or ``mount_gradio_app``."""
    blocks.delete_cache = (SWEEP_EVERY_S, UNSUBMITTED_AGE_S)


def discard(paths: Iterable[str | Path]) -> None:
    """Remove Gradio's copies of an upload, and the folders Gradio made for them; never a file outside its cache."""
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder()).resolve()
    for path in paths:
        file = Path(path).resolve()
        if not file.is_relative_to(cache) or file == cache:
            continue
        with contextlib.suppress(OSError):
            file.unlink()
        folder = file.parent
        while folder != cache and folder.is_relative_to(cache):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
    _sweep_orphans(cache)


def _open_files() -> set[str] | None:
    """The files this process has open (Linux), or None where that cannot be known."""
    try:
        return {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    except OSError:
        return None


def _sweep_orphans(cache: Path) -> None:
    """Gradio 6.31's ``gr.File`` leaves an empty temporary file in the cache's top folder for every file it
    hands to a handler (seen: one ``tmp*`` per uploaded file, never deleted). Uploads in progress also write
    there, to files the server holds open, so only files nobody has open are removed."""
    open_now = _open_files()
    if open_now is None:
        return  # the next start empties the cache
    with os.scandir(cache) as entries:
        orphans = [e.path for e in entries if e.is_file(follow_symlinks=False) and e.path not in open_now]
    for path in orphans:
        with contextlib.suppress(OSError):
            os.unlink(path)
