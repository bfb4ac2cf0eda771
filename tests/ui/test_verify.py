"""The verify view's routes over HTTP, in process: page images, text views and downloads only for users allowed
the collection (401 without a login, 403 for another user's collection), never a path outside its documents,
and the documents' own HTML shown as text. The same against a real server in Chromium: tests/ui/test_browser.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from ingest.collection import Collection
from rag.audit import AuditLog, read_events
from rag.config import Settings, load_settings
from rag.users import add_user
from tests.conftest import REPO, write_config
from tests.fakes import HashEmbedder
from ui.guards import protect
from ui.server import create_app
from ui.throttle import checked_auth
from ui.verify import Verifier

ACCESS = {"secret": ["alice"], "*": ["alice", "bob"]}
PASSWORDS = {"alice": "alice-long-password", "bob": "bob-long-password"}
NOTES = (
    "# Parking\n\nVisitors park on **level -2** of the garage. <img src=x onerror=alert(1)>\n\nBikes go in the yard.\n"
)
BASE = "http://127.0.0.1:7860"


@dataclass
class Site:
    settings: Settings
    verifier: Verifier
    app: object
    ids: dict[str, str]  # file name -> document id
    docs: Path

    def client(self, user: str | None = None) -> TestClient:
        client = TestClient(self.app, base_url=BASE)  # type: ignore[arg-type]
        if user is not None:
            login = client.post("/login", data={"username": user, "password": PASSWORDS[user]})
            assert login.status_code == 200, login.text
        return client

    def url(self, name: str, what: str, collection: str = "kura") -> str:
        return f"/kura/docs/{collection}/{self.ids[name]}/{what}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("verify")
    settings = load_settings(write_config(folder, ui={"collection_access": ACCESS}))
    docs, vault = folder / "docs", folder / "vault"
    docs.mkdir()
    vault.mkdir()
    shutil.copyfile(REPO / "data" / "sample" / "security-policy.pdf", docs / "policy.pdf")
    (docs / "notes.md").write_text(NOTES)
    (vault / "vault.md").write_text("# Vault\n\nThe vault code is 4711.\n")
    embedder = HashEmbedder()
    Collection(settings, "kura").ingest([docs], embedder)
    Collection(settings, "secret").ingest([vault], embedder)
    for name, password in PASSWORDS.items():
        add_user(settings, name, password)
    ids = {d.rel: d.id for name in ("kura", "secret") for d in Collection(settings, name).documents()}
    with gr.Blocks() as demo:
        gr.Markdown("Kura")
    verifier = Verifier(settings, login=True, audit=AuditLog(settings))
    app = create_app(settings, demo, "127.0.0.1", 7860, checked_auth(settings), routers=[verifier.router()])
    protect(app, settings, login=True)
    yield Site(settings, verifier, app, ids, docs)


def test_pages_text_and_files_are_served_only_to_users_allowed_the_collection(site: Site) -> None:
    secret = [site.url("vault.md", what, "secret") for what in ("text", "file")]
    own = [site.url("policy.pdf", "pages/2.png"), site.url("notes.md", "text"), site.url("policy.pdf", "file")]
    anonymous, bob, alice = site.client(), site.client("bob"), site.client("alice")
    for url in own + secret:
        assert anonymous.get(url).status_code == 401, url
    for url in secret:
        refused = bob.get(url)
        assert refused.status_code == 403 and "4711" not in refused.text, url
        assert alice.get(url).status_code == 200, url
    page = bob.get(own[0])
    assert page.status_code == 200 and page.headers["content-type"] == "image/png" and page.content[:4] == b"\x89PNG"
    assert page.headers["x-frame-options"] == "DENY"  # behind the same guard as the page
    download = bob.get(own[2])
    assert download.content == (site.docs / "policy.pdf").read_bytes()
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith('attachment; filename="policy.pdf"')
    downloaded = [e for e in read_events(site.settings, user="bob") if e["event"] == "download"]
    assert [(e["collection"], e["file"], e["via"]) for e in downloaded] == [("kura", "policy.pdf", "web")]
    assert bob.get(site.url("policy.pdf", "pages/9.png")).status_code == 404
    assert bob.get(site.url("notes.md", "pages/1.png")).status_code == 404  # no page images of a text


def test_no_path_outside_the_collections_documents_is_served(site: Site) -> None:
    alice = site.client("alice")
    vault_in_kura = f"/kura/docs/kura/{site.ids['vault.md']}/file"  # another collection's document
    for url in (
        vault_in_kura,
        "/kura/docs/kura/..%2F..%2F..%2Fetc%2Fpasswd/file",
        "/kura/docs/kura/../../../../etc/passwd",
        "/kura/docs/kura/%2e%2e%2f%2e%2e%2fconfig.yaml/file",
        f"/kura/docs/..%2Fsecret/{site.ids['vault.md']}/file",
        "/kura/docs/kura/" + "0" * 16 + "/file",
        f"/kura/docs/kura/{site.ids['policy.pdf']}/pages/..%2F..%2Fnotes.png",
        f"/kura/docs/kura/{site.ids['policy.pdf']}/pages/-1.png",
    ):
        response = alice.get(url)
        assert response.status_code in (403, 404, 422) or "<html" in response.text.lower(), url
        assert "root:" not in response.text and "4711" not in response.text and "paths:" not in response.text, url


def test_the_text_view_marks_the_sentence_and_shows_the_documents_html_as_text(site: Site) -> None:
    source = {"n": 1, "path": "notes.md", "score": 0.5, "text": NOTES.split("\n\n", 1)[1], "file": ""}
    source["file"] = str(site.docs.resolve() / "notes.md")
    panel = site.verifier.panel("bob", "kura", source, ["Bikes go in the yard."])
    url = panel.split('data-src="')[1].split('"')[0].replace("&amp;", "&")
    view = site.client("bob").get(url).text
    assert '<mark class="kura-hl">Bikes go in the yard.</mark>' in view
    assert '<strong><mark class="kura-ctx">level -2</mark></strong>' in view  # Markdown rendered, marks inside
    assert "&lt;img src=x onerror=alert(1)&gt;" in view and "<img" not in view
    assert site.verifier.panel("bob", "secret", source, []).count("no collection named &#x27;secret&#x27;") == 1


def test_a_pdf_source_opens_on_its_page_with_the_sentence_boxed(site: Site) -> None:
    sentence = "4.3 Report first, investigate never: do not try to analyse malware yourself"
    source = {"n": 2, "path": "policy.pdf", "page": 2, "score": 0.5, "text": sentence}
    source["file"] = str(site.docs.resolve() / "policy.pdf")
    panel = site.verifier.panel("bob", "kura", source, [sentence])
    assert 'data-page="2" data-pages="3"' in panel and f"/kura/docs/kura/{site.ids['policy.pdf']}/pages/2.png" in panel
    assert panel.count('class="kura-box kura-hl"') == 1  # one line on the page


def test_a_file_changed_since_it_was_ingested_is_not_shown_as_if_it_were_the_same(site: Site) -> None:
    with (site.docs / "notes.md").open("a") as notes:
        notes.write("\nA line added after the ingest.\n")
    refused = site.client("alice").get(site.url("notes.md", "text"))
    assert refused.status_code == 409 and "has changed since it was ingested" in refused.text
