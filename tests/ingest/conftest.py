"""A real Chroma server on 127.0.0.1 for the store contract, started and stopped by the suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import start_chroma


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, url = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield url
    server.terminate()
    server.wait(timeout=30)
