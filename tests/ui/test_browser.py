"""The web UI in a real Chromium against a real ``kura serve``: login, a streamed cited answer, the source
panel, Markdown rendered while uploads and documents' HTML stay text, access through the API, and not one
request leaving the machine.

The bundled 135M model answers poorly, so nothing here depends on its wording: only on structure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import KURA, REPO, write_config
from tests.helpers import Server, free_port, start_server
from tests.ui.conftest import ACCESS, ARTIFACTS, PASSWORDS, SAMPLE, Record
from ui.throttle import FREE_FAILURES

pytestmark = pytest.mark.slow

QUESTION = "Within how many hours must a suspected security incident be reported?"
EVIL = "<img src=x onerror=window.__kura_xss=1>"
RAW = "<b>raw</b>"
# The model's figures only when it wrote the answer (not in the default extract mode)
FOOTER = re.compile(r"retrieve \d+ ms · (first token \d+ ms · [\d.]+ tokens/s · )?total [\d.]+ s · .+ on (CPU|GPU|NPU)")
DOCS_SCREENSHOT = REPO / "docs" / "chat.png"
LAST_TURN_JS = """() => {
  const turn = [...document.querySelectorAll('#kura-chat .kura-turn')].pop();
  const pending = turn && turn.querySelector('.kura-pending');
  return {done: !!(turn && turn.querySelector('.kura-footer')), pending: pending ? pending.innerText : null};
}"""


def login(page: Any, server: Server, user: str, password: str) -> None:
    if "/login" not in page.url and not page.get_by_label("username").count():
        page.goto(server.url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def open_as(page: Any, server: Server, user: str) -> None:
    page.goto(server.url)
    login(page, server, user, PASSWORDS[user])
    expect(page.locator("#kura-question textarea")).to_be_visible()
    expect(page.locator("#kura-collection input")).to_have_value("kura")


def ask(page: Any, question: str, timeout_ms: int = 300_000) -> tuple[float, list[str]]:
    """Ask, and collect the partial answers seen while it streams; returns seconds to the footer."""
    page.locator("#kura-question textarea").fill(question)
    started = time.monotonic()
    page.locator("#kura-ask").click()
    turn = page.locator("#kura-chat .kura-turn").last
    expect(turn.locator(".kura-q")).to_have_text(question)
    partials: list[str] = []
    deadline = started + timeout_ms / 1000
    while time.monotonic() < deadline:
        state = page.evaluate(LAST_TURN_JS)  # read in one go: the page changes between two locator calls
        if state["done"]:
            break
        text = (state["pending"] or "").strip()
        if text and text != "…" and (not partials or partials[-1] != text):
            partials.append(text)
        time.sleep(0.05)
    expect(turn.locator(".kura-footer")).to_be_visible(timeout=1000)
    return time.monotonic() - started, partials


SLID_IN = """() => {
  const box = document.getElementById('kura-source').getBoundingClientRect();
  return box.left === 0 && box.top === 0 && box.width === window.innerWidth && box.height === window.innerHeight;
}"""
FETCH_JS = """async ([url, init]) => {
  try { const response = await fetch(url, {credentials: 'include', ...init}); return await response.text(); }
  catch (error) { return 'blocked'; }
}"""
SECURITY_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def login_cookies(http: httpx.Client, server: Server, user: str) -> dict[str, str]:
    """A login over plain HTTP, as a Cookie header: httpx would keep Gradio's ``Secure`` cookie for https only."""
    response = http.post(server.url + "login", data={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 200, response.text
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("samesite=lax" in cookie.lower() for cookie in cookies), cookies  # Gradio sets None
    return {"Cookie": "; ".join(cookie.split(";")[0] for cookie in cookies)}


def no_cors_grant(response: httpx.Response) -> bool:
    return not [name for name in response.headers if name.lower().startswith("access-control-")]


class OtherSite(ThreadingHTTPServer):
    """Another website on this machine (same site as 127.0.0.1 to the browser, so it even gets Lax cookies)."""

    def __init__(self, page_html: str) -> None:
        html = page_html.encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Page)
        self.url = f"http://127.0.0.1:{self.server_port}/"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def shrink_png(source: Path, target: Path, limit: int = 200_000) -> None:
    """The README's screenshot: a palette PNG, scaled down until it is under ``limit`` bytes."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    while True:
        image.quantize(colors=128).save(target, optimize=True)
        if target.stat().st_size < limit:
            return
        image = image.resize((image.width * 4 // 5, image.height * 4 // 5), Image.LANCZOS)


def test_login_refuses_a_wrong_password_then_admits_the_user(site: Server, page: Any) -> None:
    page.goto(site.url)
    login(page, site, "alice", "not-the-password")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    assert page.locator("#kura-question").count() == 0
    login(page, site, "alice", PASSWORDS["alice"])
    expect(page.locator("#kura-question textarea")).to_be_visible()
    expect(page.locator("#kura-collection input")).to_have_value("kura")
    assert "SmolLM2" in page.locator(".kura-status").inner_text()
    expect(page.locator("#kura-account")).to_contain_text("signed in as alice")
    page.locator("#kura-account a", has_text="Log out").click()
    expect(page.get_by_label("username")).to_be_visible()
    assert "kura users add" not in page.content(), "the login page speaks to users, not to admins"
    page.goto(site.url)
    expect(page.get_by_label("username")).to_be_visible()  # logged out for good, not just sent to the form


def set_number(page: Any, slider: str, value: str, attempts: int = 3) -> None:
    """Type a slider's number as a user does, until the slider shows it: on a loaded machine the first typing was
    once not taken at all (the question then went out with 5 sources, not 2)."""
    number, track = page.locator(f"{slider} input[type=number]"), page.locator(f"{slider} input[type=range]")
    for _ in range(attempts):
        number.fill(value)
        number.press("Enter")
        number.blur()
        try:
            expect(track).to_have_value(value, timeout=3000)
            return
        except AssertionError:
            continue
    expect(track).to_have_value(value)


def test_checked_answer_has_a_footer_and_citations_open_their_source(site: Server, page: Any, record: Record) -> None:
    open_as(page, site, "alice")
    page.locator("#kura-settings").get_by_text("Settings").click()  # open the accordion
    for slider, value in (("#kura-k", "2"), ("#kura-max-tokens", "96")):  # a short answer for the screenshot
        set_number(page, slider, value)
    seconds, partials = ask(page, QUESTION)
    turn = page.locator("#kura-chat .kura-turn").last
    answer = turn.locator(".kura-a").inner_text().strip()
    footer = turn.locator(".kura-footer").inner_text()
    record.timings.update(answer_s=round(seconds, 2), footer=footer, partial_updates_seen=len(partials))
    assert answer, "the answer is empty"
    # the answer is shown once it is checked: nothing the page showed is later replaced
    assert len(partials) <= 1, f"text was shown and then replaced: {partials}"
    assert FOOTER.search(footer), footer
    assert turn.locator(".kura-reasoning").count() == 0 or not turn.locator(".kura-reasoning").get_attribute("open")
    assert 1 <= turn.locator(".kura-sources .kura-cite").count() <= 2  # top-k from the settings reached the server

    turn.locator(".kura-cite[data-n='1']:not(.kura-check)").first.click()
    panel = page.locator("#kura-source .kura-panel[data-n='1']")
    expect(panel).to_be_visible()
    expect(panel.locator("dd").first).to_have_text("security-policy.pdf")
    assert re.search(r"Score\s+0\.\d{3}", panel.inner_text()) and panel.locator(".kura-snippet").text_content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)  # let the citation's highlight transition finish
    page.screenshot(path=str(ARTIFACTS / "chat.png"))
    if os.environ.get("KURA_UPDATE_DOCS_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shrink_png(ARTIFACTS / "chat.png", DOCS_SCREENSHOT)


def _upload_files(folder: Path) -> list[Path]:
    note = folder / "parking.md"
    note.write_text(f"# Parking\n\nVisitors park on **level -2** of the garage. {RAW} {EVIL}\n")
    archive = folder / "team.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"team/{EVIL}.md", "# Kitchen\n\nThe espresso machine is on floor 3.\n")
        bundle.writestr("team/../../escape.md", "must not be unpacked")
        bundle.writestr("team/setup.exe", "MZ")
    return [note, archive]


def test_uploads_are_ingested_listed_as_text_and_deletable(site: Server, page: Any, tmp_path: Path) -> None:
    open_as(page, site, "alice")
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#kura-docs table")).to_contain_text("security-policy.pdf")
    page.locator("#kura-files input[type=file]").set_input_files([str(p) for p in _upload_files(tmp_path)])
    for name in ("parking.md", "team.zip"):  # uploaded to the server, ready to ingest
        expect(page.locator(f"#kura-files a[href$='/{name}']")).to_have_count(1)
    page.locator("#kura-upload").click()
    summary = page.locator("#kura-summary .kura-summary")
    expect(summary).to_contain_text("added 2", timeout=120_000)
    expect(summary).to_contain_text("skipped team.zip/team/../../escape.md: '..' in its path in the zip")
    expect(summary).to_contain_text("skipped team.zip/team/setup.exe: unsupported type .exe")
    table = page.locator("#kura-docs table")
    expect(table).to_contain_text(f"team/{EVIL}.md")  # the name shown literally, as text
    expect(table).to_contain_text("parking.md")
    page.screenshot(path=str(ARTIFACTS / "documents.png"), full_page=True)

    page.get_by_role("tab", name="Chat").click()
    ask(page, "Where do visitors park?")
    page.locator("#kura-chat .kura-sources .kura-cite", has_text="parking.md").first.click()
    snippet = page.locator("#kura-source .kura-snippet")
    expect(snippet).to_contain_text(EVIL)
    expect(snippet).to_contain_text(RAW)  # the document's HTML as text, its Markdown as markup
    expect(snippet.locator("strong")).to_have_text("level -2")
    assert "**" not in snippet.inner_text() and page.locator("#kura-source b").count() == 0
    assert page.locator("#kura-docs img, #kura-chat img, #kura-source img, #kura-summary img").count() == 0
    assert page.evaluate("window.__kura_xss") is None

    page.get_by_role("tab", name="Documents").click()
    delete_after_asking(page, "parking.md (upload)", "Delete parking.md (1 chunk) from kura?")
    expect(page.locator("#kura-summary")).to_contain_text("deleted parking.md from kura")
    expect(table).not_to_contain_text("parking.md")
    expect(table).to_contain_text(f"team/{EVIL}.md")


def delete_after_asking(page: Any, option: str, question: str) -> None:
    """Delete a document the way a user does: nothing chosen (a line in the tab), then Keep, then Delete."""
    notice, confirm = page.locator("#kura-docs-notice"), page.locator("#kura-confirm")
    page.locator("#kura-delete").click()
    expect(notice).to_have_text("choose a document to delete first")
    assert page.get_by_text("choose a document to delete first").count() == 1, "a line in the tab, not a toast too"
    assert page.get_by_text("Error", exact=True).count() == 0, "no red pills over the picker"
    page.screenshot(path=str(ARTIFACTS / "documents-nothing-chosen.png"), full_page=True)
    page.locator("#kura-doc input").click()  # the next action dismisses the line, and the picker opens
    expect(notice).to_be_hidden()
    page.get_by_role("option", name=option).click()
    page.locator("#kura-delete").click()
    expect(confirm).to_be_visible()
    expect(confirm.locator(".kura-confirm-text")).to_have_text(question)
    page.screenshot(path=str(ARTIFACTS / "documents-confirm.png"), full_page=True)
    page.locator("#kura-keep").click()
    expect(confirm).to_be_hidden()
    page.locator("#kura-refresh").click()
    expect(page.locator("#kura-docs")).to_contain_text(question.split()[1])  # Keep kept it
    page.locator("#kura-doc input").click()
    page.get_by_role("option", name=option).click()
    page.locator("#kura-delete").click()
    page.locator("#kura-confirm-delete").click()
    expect(confirm).to_be_hidden()


def test_a_400px_screen_has_a_usable_question_and_the_source_in_a_drawer(site: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 400, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        open_as(page, site, "alice")
        question, drawer = page.locator("#kura-question textarea"), page.locator("#kura-source")
        assert question.bounding_box()["width"] >= 300, "the question takes the whole line"
        expect(drawer).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / "narrow-page.png"), full_page=True)
        page.locator("#kura-settings").get_by_text("Settings").click()
        number = page.locator("#kura-max-tokens input[type=number]")
        number.fill("96")
        number.press("Enter")
        ask(page, QUESTION)
        page.screenshot(path=str(ARTIFACTS / "narrow-chat.png"))
        cite = page.locator("#kura-chat .kura-sources .kura-cite").first
        cite.click()
        expect(drawer.locator(".kura-panel[data-n]")).to_be_visible()
        page.wait_for_function(SLID_IN)  # over the page, not below the fold
        page.screenshot(path=str(ARTIFACTS / "narrow-drawer.png"))
        drawer.locator(".kura-close").click()
        expect(drawer).to_be_hidden()
        cite.click()
        expect(drawer).to_be_visible()
        page.keyboard.press("Escape")
        expect(drawer).to_be_hidden()
        expect(question).to_be_visible()
    finally:
        context.close()


def test_no_developer_items_and_a_dark_mode_kept_in_the_browser(site: Server, page: Any) -> None:
    open_as(page, site, "alice")
    assert page.locator("footer").count() == 0, "Gradio's footer: Use via API, Built with Gradio, Settings"
    assert page.get_by_text("Use via API").count() == 0 and page.get_by_text("Built with Gradio").count() == 0
    toggle = page.locator("#kura-foot .kura-theme")
    expect(toggle).to_have_text("Dark mode")
    toggle.click()
    expect(page.locator("body")).to_have_class(re.compile(r"\bdark\b"))
    expect(toggle).to_have_text("Light mode")
    sun = toggle.locator("svg.kura-sun")
    assert sun.is_visible() and sun.bounding_box()["width"] >= 10, "the icon is drawn, not an empty box"
    page.reload()
    expect(page.locator("#kura-question textarea")).to_be_visible()
    expect(page.locator("body")).to_have_class(re.compile(r"\bdark\b"))  # the choice outlives a reload
    expect(page.locator("#kura-chat")).to_contain_text("Ask a question about the documents in kura")
    page.screenshot(path=str(ARTIFACTS / "dark.png"), full_page=True)
    page.locator("#kura-foot .kura-theme").click()
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bdark\b"))
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)  # Gradio's colour transitions: a screenshot at once catches them halfway
    page.screenshot(path=str(ARTIFACTS / "light.png"), full_page=True)


def test_markdown_in_an_answer_is_rendered_with_its_citations_clickable(
    store_folder: Path, tmp_path: Path, page: Any, record: Record
) -> None:
    """``answer_mode: extract`` answers with the document's own sentence, "**Bitwarden**" included, whatever
    the bundled model would have written: the one way to a known answer with Markdown in it."""
    shared = {name: str(store_folder / name) for name in ("models", "store")}
    config = write_config(tmp_path, paths={**shared, "uploads": str(tmp_path / "up")}, llm={"answer_mode": "extract"})
    server = start_server(config, tmp_path, "serve-extract")
    record.servers.add(f"127.0.0.1:{server.port}")
    try:
        page.goto(server.url)
        expect(page.locator("#kura-collection input")).to_have_value("kura")
        ask(page, "Which password manager does the company use?")
        turn = page.locator("#kura-chat .kura-turn").last
        answer = turn.locator(".kura-a")
        expect(answer.locator("strong")).to_have_text("Bitwarden")
        assert "*" not in answer.inner_text(), answer.inner_text()
        turn.locator(".kura-evidence summary").click()
        expect(turn.locator(".kura-evidence li strong", has_text="Bitwarden").first).to_be_visible()
        answer.locator(".kura-cite").first.click()
        snippet = page.locator("#kura-source .kura-snippet")
        expect(snippet.locator("strong", has_text="Bitwarden")).to_have_count(1)
        assert "**" not in snippet.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.mouse.move(0, 0)
        page.wait_for_timeout(500)  # let the citation's highlight transition finish
        page.screenshot(path=str(ARTIFACTS / "markdown.png"))
    finally:
        server.stop()
    assert not server.guard_log.exists() or server.guard_log.read_text() == ""


def test_api_refuses_a_user_without_access_to_a_collection(site: Server) -> None:
    from gradio_client import Client

    bob = Client(site.url, auth=("bob", PASSWORDS["bob"]), verbose=False)
    assert [name for name, _ in bob.predict(api_name="/collections")["choices"]] == ["kura"]
    refusal = "no collection named 'secret' that you may use"
    with pytest.raises(Exception, match=refusal):
        bob.predict("What is the vault code?", "secret", 3, 0.0, 32, True, api_name="/ask")
    with pytest.raises(Exception, match=refusal):
        bob.predict("secret", api_name="/documents")
    with pytest.raises(Exception, match=refusal):
        bob.predict("secret", "any-id", api_name="/delete_document")

    alice = Client(site.url, auth=("alice", PASSWORDS["alice"]), verbose=False)
    assert "secret" in [name for name, _ in alice.predict(api_name="/collections")["choices"]]
    table, _ = alice.predict("secret", api_name="/documents")
    assert "vault.md" in table
    with pytest.raises(Exception):  # noqa: B017 - no session at all: Gradio refuses before any handler runs
        Client(site.url, verbose=False).predict(api_name="/collections")


def test_other_websites_and_other_host_names_are_refused(site: Server) -> None:
    """Issue 15's probes over HTTP: a foreign Origin gets no token, no call and no CORS grant; a forged Host
    (DNS rebinding) gets 400; the server fetches no URL named in ``file=``; every response has the headers."""
    own = site.url.rstrip("/")
    other_origins = ["https://evil.example", f"http://127.0.0.1:{free_port()}", "null"]
    call = {"json": {"data": ["kura"]}}
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as http:
        alice = login_cookies(http, site, "alice")
        token = http.get("gradio_api/token", headers={**alice, "Origin": own})
        assert token.status_code == 200 and token.json()["user"] == "alice" and no_cors_grant(token)
        started = http.post("gradio_api/call/documents", headers={**alice, "Origin": own}, **call)
        assert started.status_code == 200 and started.json()["event_id"]
        for origin in other_origins:
            for response in (
                http.get("gradio_api/token", headers={**alice, "Origin": origin}),
                http.post("gradio_api/call/documents", headers={**alice, "Origin": origin}, **call),
                http.options(
                    "gradio_api/call/documents",
                    headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                ),
                http.post("login", headers={"Origin": origin}, data={"username": "alice", "password": "x"}),
            ):
                assert response.status_code == 403 and no_cors_grant(response), (origin, response.request.url)
                assert "set-cookie" not in response.headers
        for host in ("rebind.attacker.example", f"rebind.attacker.example:{site.port}"):
            assert http.get("", headers={"Host": host}).status_code == 400
            assert http.post("gradio_api/call/documents", headers={**alice, "Host": host}, **call).status_code == 400
        for path in (
            "gradio_api/file=https%3A%2F%2Fintranet-wiki.corp.example%2Fx",
            "gradio_api/file=http://intranet-wiki.corp.example/x",
            "gradio_api/proxy=https://intranet-wiki.corp.example/x",
        ):
            assert http.get(path, headers=alice).status_code == 403, path
        remote = {"path": "https://intranet-wiki.corp.example/x", "meta": {"_type": "gradio.FileData"}}
        upload = http.post("gradio_api/call/upload", headers=alice, json={"data": [[remote], "kura"]})
        outcome = http.get(f"gradio_api/call/upload/{upload.json()['event_id']}", headers=alice).text
        assert "event: error" in outcome and "Kura does not fetch URLs" in outcome, outcome
        for path in ("", "gradio_api/info", "gradio_api/token", "theme.css"):
            response = http.get(path, headers=alice)
            assert response.status_code == 200, path
            assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS, path


def test_another_origin_can_neither_use_the_login_nor_frame_kura(site: Server, page: Any, record: Record) -> None:
    """Chromium, logged in to Kura, opens another website: its scripts cannot read the token or start a call,
    and Kura in its frame does not load (frame-ancestors 'none')."""
    other = OtherSite(f'<p>another website</p><iframe id="kura" src="{site.url}"></iframe>')
    record.servers.add(f"127.0.0.1:{other.server_port}")
    token_url, call_url = site.url + "gradio_api/token", site.url + "gradio_api/call/documents"
    post = {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": '{"data": ["kura"]}'}
    try:
        open_as(page, site, "alice")
        assert '"user":"alice"' in page.evaluate(FETCH_JS, [token_url, {}]).replace(" ", "")  # the same origin may
        assert "event_id" in page.evaluate(FETCH_JS, [call_url, post])
        page.goto(other.url)
        assert page.evaluate(FETCH_JS, [token_url, {}]) == "blocked"
        assert page.evaluate(FETCH_JS, [call_url, post]) == "blocked"
        framed = next(frame for frame in page.frames if frame != page.main_frame)  # loaded: goto waits for it
        assert framed.url == "chrome-error://chromewebdata/", framed.url  # Chromium's page for a refused frame
    finally:
        other.stop()


def test_local_server_without_users_needs_no_login_and_hides_listed_collections(
    store_folder: Path, tmp_path: Path, page: Any, record: Record
) -> None:
    """Second start (compiled-model cache warm); the listed collection stays hidden from an anonymous user."""
    from gradio_client import Client

    shared = {name: str(store_folder / name) for name in ("models", "store")}
    config = write_config(tmp_path, paths={**shared, "uploads": str(tmp_path / "up")}, ui={"collection_access": ACCESS})
    server = start_server(config, tmp_path, "serve-local")
    record.timings["second_start_s"] = server.ready_s
    record.servers.add(f"127.0.0.1:{server.port}")
    try:
        page.goto(server.url)
        expect(page.locator("#kura-question textarea")).to_be_visible()
        expect(page.locator("#kura-collection input")).to_have_value("kura")
        assert [name for name, _ in Client(server.url, verbose=False).predict(api_name="/collections")["choices"]] == [
            "kura"
        ]
        with pytest.raises(Exception, match="no collection named 'secret' that you may use"):
            Client(server.url, verbose=False).predict("secret", api_name="/documents")
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:  # DNS rebinding
            call = {"json": {"data": ["kura"]}}
            assert http.post("gradio_api/call/documents", **call).status_code == 200
            rebound = http.post("gradio_api/call/documents", headers={"Host": "rebind.attacker.example"}, **call)
            assert rebound.status_code == 400
        server.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.proc.wait(timeout=120) == 0 and "Traceback" not in server.output(), server.output()
    finally:
        server.stop()
    assert not server.guard_log.exists() or server.guard_log.read_text() == ""


def _kura_users(config: Path, *args: str, stdin: str = "") -> None:
    command = [KURA, "users", *args, "--config", str(config)]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_logins_are_throttled_and_sessions_end_with_a_password_change_or_removal(site: Server) -> None:
    """Over HTTP against the real server: Gradio's /login, Kura's throttle in front, its sessions behind."""
    import httpx

    _kura_users(site.config, "add", "carol", "--password-stdin", stdin="carol-long-password\n")
    with httpx.Client(base_url=site.url, trust_env=False, timeout=60) as client:
        wrong = {"username": "mallory", "password": "not-a-password"}
        statuses = [client.post("/login", data=wrong).status_code for _ in range(FREE_FAILURES)]
        started = time.perf_counter()
        throttled = client.post("/login", data=wrong)
        print(f"throttled login refused in {time.perf_counter() - started:.3f} s")  # no PBKDF2 ran: a benchmark
        assert statuses == [400] * FREE_FAILURES and throttled.status_code == 429
        assert "Too many failed logins: try again in 1 s" in throttled.json()["detail"]
        time.sleep(1.1)
        carol = {"username": "carol", "password": "carol-long-password"}
        assert client.post("/login", data=carol).status_code == 200  # and the address starts again from zero
        assert client.get("/gradio_api/user").json() == "carol" and client.get("/config").status_code == 200
        _kura_users(site.config, "add", "carol", "--password-stdin", stdin="carol-new-password\n")
        assert client.get("/config").status_code == 401 and client.get("/gradio_api/user").json() is None
        assert client.post("/login", data={**carol, "password": "carol-new-password"}).status_code == 200
        assert client.get("/config").status_code == 200
        _kura_users(site.config, "remove", "carol")
        assert client.get("/config").status_code == 401
    log = site.output()
    assert "login failed for 'mallory' from 127.0.0.1" in log and "not-a-password" not in log


def test_the_upload_cache_is_private_emptied_on_start_and_a_refused_upload_leaves_nothing(
    site: Server, store_folder: Path, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    cache = store_folder / "up" / ".gradio"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert not (cache / "from-an-earlier-run").exists(), "the server emptied the cache when it started"
    note = tmp_path / "bobs-note.md"
    note.write_text("# Bob\n\nBob may not write to the secret collection.\n")
    bob = Client(site.url, auth=("bob", PASSWORDS["bob"]), verbose=False)
    with pytest.raises(Exception, match="no collection named 'secret' that you may use"):
        bob.predict([handle_file(str(note))], "secret", api_name="/upload")
    # Exported chats (Export chat) are served from the cache too, and expire with it
    assert [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith("kura-chat-")] == []
    assert not (store_folder / "up" / "secret").exists()


def test_nothing_left_the_machine(site: Server, record: Record) -> None:
    """Every request the browser made went to a Kura server this module started (data:/blob: stay in the page)."""
    assert record.requests, "no browser requests were recorded"
    outside = {
        url
        for url in record.requests
        if urlparse(url).scheme not in ("data", "blob") and urlparse(url).netloc not in record.servers
    }
    assert not outside, sorted(outside)
    assert not site.guard_log.exists() or site.guard_log.read_text() == "", site.guard_log.read_text()
    record.timings["browser_requests"] = len(record.requests)
    shutil.copyfile(site.log, ARTIFACTS / "serve.log")


# --- Stop, the chat kept across a reload, export (issue 18) -------------------------------------------------
STOPPED_LOG = re.compile(r"answer stopped: the model decoded (\d+) tokens? after the click")


@pytest.fixture(scope="module")
def generating(store_folder: Path, record: Record, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same store and users served with ``answer_mode: generate``, whose answer streams as it is decoded
    (auto mode shows it only once checked), so a test can click Stop while the model decodes."""
    folder = tmp_path_factory.mktemp("generate")
    config = write_config(folder, ui={"collection_access": ACCESS}, llm={"answer_mode": "generate"})
    os.symlink(store_folder / "models", folder / "models")
    shutil.copytree(store_folder / "store", folder / "store")
    shutil.copytree(store_folder / "data", folder / "data")  # the users
    server = start_server(config, folder, "serve-generate")
    record.servers.add(f"127.0.0.1:{server.port}")
    yield server
    server.stop()


def _settle(page: Any) -> None:
    page.mouse.move(0, 0)
    page.wait_for_timeout(400)


def test_stop_ends_the_answer_at_once_and_the_model_stops_decoding(
    generating: Server, page: Any, record: Record
) -> None:
    open_as(page, generating, "alice")
    page.locator("#kura-settings").get_by_text("Settings").click()
    number = page.locator("#kura-max-tokens input[type=number]")
    number.fill("2048")  # far more than the answer needs: only the Stop ends it early
    number.press("Enter")
    page.locator("#kura-question textarea").fill(QUESTION)
    page.locator("#kura-ask").click()
    expect(page.locator("#kura-stop")).to_be_visible()
    expect(page.locator("#kura-ask")).to_be_hidden()
    pending = page.locator("#kura-chat .kura-turn").last.locator(".kura-pending")
    expect(pending).not_to_have_text("…", timeout=120_000)  # the model is decoding: its first words are shown
    box = page.locator("#kura-question textarea")
    box.fill("A second question while the first streams?")
    box.press("Enter")  # refused: one answer at a time per page
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / "chat-streaming-stop.png"))
    page.locator("#kura-stop").click()
    clicked = time.monotonic()
    expect(page.locator("#kura-ask")).to_be_visible(timeout=5000)
    record.timings["stop_to_ask_s"] = round(time.monotonic() - clicked, 2)
    expect(page.locator("#kura-stop")).to_be_hidden()
    turns = page.locator("#kura-chat .kura-turn")
    expect(turns).to_have_count(1)
    expect(turns.last.locator(".kura-a")).to_contain_text("Stopped: ")
    expect(turns.last.locator(".kura-footer")).to_contain_text("stopped")
    expect(box).to_have_value("A second question while the first streams?")  # kept for the next Ask
    deadline = time.monotonic() + 10
    while not (found := STOPPED_LOG.search(generating.output())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found, generating.output()[-2000:]
    record.timings["tokens_decoded_after_stop"] = int(found.group(1))
    # The step under way when the click arrived, then none: with prompt lookup one step verifies up to
    # llm.lookup_tokens (5) drafted tokens plus one (seen: 1 and 6)
    assert int(found.group(1)) <= 6, found.group(0)
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / "chat-stopped.png"))


def test_a_reload_keeps_the_chat_and_collection_and_export_downloads_it_as_markdown(
    site: Server, page: Any, tmp_path: Path
) -> None:
    open_as(page, site, "alice")
    page.locator("#kura-collection input").click()
    page.get_by_role("option", name="secret").click()
    expect(page.locator("#kura-chat .kura-empty")).to_contain_text("secret")
    expect(page.locator("#kura-export")).to_be_disabled()
    ask(page, "What is the vault code?")
    answer = page.locator("#kura-chat .kura-turn .kura-a").inner_text()
    expect(page.locator("#kura-export")).to_be_enabled()  # the step after the answer saved the chat too
    page.reload()
    expect(page.locator("#kura-collection input")).to_have_value("secret")
    turn = page.locator("#kura-chat .kura-turn")
    expect(turn).to_have_count(1)
    expect(turn.locator(".kura-q")).to_have_text("What is the vault code?")
    expect(turn.locator(".kura-a")).to_have_text(answer)
    turn.locator(".kura-sources .kura-cite").first.click()  # citations of a restored answer still open
    expect(page.locator("#kura-source .kura-panel dd").first).to_have_text("vault.md")
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / "chat-reloaded.png"))
    with page.expect_download() as download:
        page.locator("#kura-export").click()
    assert download.value.suggested_filename == "kura-chat-secret.md"
    text = download.value.path().read_text(encoding="utf-8")
    assert text.startswith("# Kura chat: secret") and "## 1. What is the vault code?" in text
    # the page shows the Markdown rendered and each sentence's support check (✓): the file keeps its ** for the
    # bold key sentence, and no checks
    shown = answer.replace("✓", "")
    assert f"\n{shown}\n" in text.replace("**", "") and "Sources:\n\n- [1] vault.md (Vault)" in text, text


# --- the verify view (issue 17) -----------------------------------------------------------------------------
VERIFY_SCREENSHOT = REPO / "docs" / "verify.png"
BOX_JS = """([selector, image]) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  const page = document.querySelector(image).getBoundingClientRect();
  return [(box.left - page.left) / page.width, (box.top - page.top) / page.height,
          (box.right - page.left) / page.width, (box.bottom - page.top) / page.height];
}"""
INSIDE_JS = """([inner, outer]) => {
  const a = document.querySelector(inner).getBoundingClientRect();
  const b = document.querySelector(outer).getBoundingClientRect();
  return {inside: a.top >= b.top && a.bottom <= b.bottom, scrolled: document.querySelector(outer).scrollTop};
}"""


def pdfium_char_box(path: Path, page: int, text: str) -> tuple[float, float, float, float]:
    """The box of the first character of ``text`` on the page by pdfium's own search, as page fractions."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    textpage = document[page - 1].get_textpage()
    start, _ = textpage.search(text).get_next()
    left, bottom, right, top = textpage.get_charbox(start)
    width, height = document[page - 1].get_size()
    return left / width, 1 - top / height, right / width, 1 - bottom / height


def test_a_citation_opens_its_page_with_the_evidence_boxed_and_others_cannot_open_it(
    site: Server, store_folder: Path, page: Any, browser: Any
) -> None:
    from ingest.collection import document_id

    open_as(page, site, "alice")
    ask(page, QUESTION)
    turn = page.locator("#kura-chat .kura-turn").last
    cite = turn.locator(".kura-a .kura-cite:not(.kura-check)").first
    n = cite.get_attribute("data-n")
    assert turn.locator(".kura-a .kura-claim.kura-supported").count() >= 1  # each sentence says what backs it
    sentence = re.sub(r"^\[\d+\]\s*", "", turn.locator(f".kura-evidence li[data-n='{n}']").first.text_content())
    cite.click()
    panel = page.locator(f"#kura-source .kura-panel[data-n='{n}']")
    expect(panel.locator("dd").first).to_have_text("security-policy.pdf")
    number = int(panel.locator("dd").nth(1).inner_text())
    image = panel.locator(".kura-page-img")
    expect(image).to_have_attribute("src", re.compile(rf"/kura/docs/kura/[0-9a-f]{{16}}/pages/{number}\.png$"))
    page.wait_for_function("() => document.querySelector('#kura-source .kura-page-img').naturalWidth > 0")
    expect(panel.locator(".kura-box.kura-hl").first).to_be_visible()
    drawn = page.evaluate(BOX_JS, ["#kura-source .kura-box.kura-hl", "#kura-source .kura-page-img"])
    left, top, _, bottom = pdfium_char_box(SAMPLE / "security-policy.pdf", number, " ".join(sentence.split()[:4]))
    assert abs(drawn[0] - left) < 0.01 and drawn[1] <= top + 0.003 and drawn[3] >= bottom - 0.003, (drawn, sentence)
    image_url = site.url + image.get_attribute("src").lstrip("/")
    panel.locator(".kura-next").click()
    expect(panel.locator(".kura-pageno")).to_have_text(f"page {number + 1} of 3")
    expect(panel.locator(".kura-box.kura-hl").first).to_be_hidden()  # the boxes belong to the cited page
    panel.locator(".kura-prev").click()
    panel.locator(".kura-zoom-in").click()
    expect(panel.locator(".kura-zoom")).to_have_text("125%")
    page.wait_for_timeout(300)
    assert page.evaluate(INSIDE_JS, ["#kura-source .kura-box.kura-hl", "#kura-source .kura-pageview"])["inside"]
    panel.locator(".kura-zoom-in").click()  # 150%: the highlighted lines readable in the screenshot
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "verify.png"))
    if os.environ.get("KURA_UPDATE_DOCS_SCREENSHOT"):
        shrink_png(ARTIFACTS / "verify.png", VERIFY_SCREENSHOT, limit=300_000)

    page.locator("#kura-clear").click()  # a new chat: not a follow-up of the first question
    expect(page.locator("#kura-chat .kura-turn")).to_have_count(0)
    ask(page, "Which password manager does the company use?")  # the handbook, a Markdown file: its text view
    turn = page.locator("#kura-chat .kura-turn").last
    turn.locator(".kura-evidence summary").click()
    turn.locator(".kura-ev").first.click()
    view = page.locator("#kura-source .kura-textview")
    expect(view.locator("mark.kura-hl", has_text="Bitwarden")).to_have_count(1)  # the marked runs of the sentence
    page.wait_for_timeout(300)
    shown = page.evaluate(INSIDE_JS, ["#kura-source mark.kura-hl", "#kura-source .kura-textview"])
    assert shown["inside"] and shown["scrolled"] > 0, shown  # scrolled down to the sentence
    page.screenshot(path=str(ARTIFACTS / "verify-text.png"))

    vault = document_id(str(store_folder / "vault" / "vault.md"))
    secret = [f"kura/docs/secret/{vault}/{what}" for what in ("pages/1.png", "text", "file")]
    others = browser.new_context()
    try:
        bob = others.new_page()
        open_as(bob, site, "bob")
        for path in secret:
            assert bob.goto(site.url + path).status == 403, path
        assert bob.goto(image_url).status == 200  # bob may use 'kura'
        anonymous = browser.new_context().new_page()
        assert anonymous.goto(image_url).status == 401
        anonymous.context.close()
    finally:
        others.close()
    alice = page.context.request
    assert alice.get(site.url + secret[2]).body() == (store_folder / "vault" / "vault.md").read_bytes()
