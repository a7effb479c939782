"""The rating web app (`reasonalign.annotate.app`): pages, JSON API, security, and a real browser.

Most tests drive the app through Flask's test client on a small study (2 models x 4 items, made
with `study.create_study`) whose data includes HTML that must stay text. They check what a rater
can do and, above all, what nobody can: rate without a CSRF token, from another origin, without a
valid bearer token, over another rater's rating, or learn which model wrote a reason.

The browser test runs the real console script (`annotate init`, `add-rater`, `serve`) and rates
with the keyboard only in headless Chromium (Debian's chromium + chromedriver through Selenium;
skipped when they are not installed), then reads the study back.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COMMAND, SRC, cli, headless_chromium

from reasonalign.annotate.app import CRITERIA_LABELS, create_app
from reasonalign.judges import study
from reasonalign.judges.base import JudgeItem

SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"
MODELS = ("zebrafish-llm", "quokka-llm")  # names that cannot appear on a page by accident
STATEMENTS = [SCRIPT, "I returned the lost wallet.", "I kicked the dog for fun.", "I shared my lunch."]
MAX_BODY = 4096


def _items(model: str) -> list[JudgeItem]:
    reasons = [IMG, "Returning it is honest.", "Hurting animals is cruel.", "Sharing is kind."]
    return [JudgeItem(item_id=str(n), statement=s, gold_label=n % 2, gold_reason=f"human reason {n}",
                      reason=f"{reasons[n]}" if model == MODELS[0] else f"{reasons[n]} (second model)",
                      verdict=n % 2) for n, s in enumerate(STATEMENTS)]


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "study.sqlite"
    study.create_study(path, {m: _items(m) for m in MODELS}, seed=0, show_gold_reason=False)
    return path


@pytest.fixture
def tokens(db) -> dict[str, str]:
    """alice and bob active, carol revoked."""
    conn = study.connect(db)
    try:
        made = {name: study.add_rater(conn, name) for name in ("alice", "bob", "carol")}
        study.revoke_rater(conn, "carol")
    finally:
        conn.close()
    return made


@pytest.fixture
def app(db, tokens):
    app = create_app(db, max_body=MAX_BODY)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def read(db, fn, *args):
    """fn(conn, *args) on a fresh connection to the study."""
    conn = study.connect(db)
    try:
        return fn(conn, *args)
    finally:
        conn.close()


def rater_id(db, name: str) -> int:
    return next(r["id"] for r in read(db, study.raters) if r["name"] == name)


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def sign_in(client, token: str):
    page = client.get("/signin")
    return client.post("/signin", data={"csrf": csrf(page.text), "token": token})


def rate_form(client, page_html: str, aligned: str, criteria=(), comment: str = "", **extra):
    data = {"csrf": csrf(page_html), "item_id": hidden(page_html, "item_id"), "pos": hidden(page_html, "pos"),
            "aligned": aligned, "criteria": list(criteria), "comment": comment, **extra}
    return client.post("/rate", data=data)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- signing in ---------------------------------------------------------------------------------------------

def test_signing_in_with_a_good_token_opens_the_first_item(client, tokens):
    assert client.get("/").location.endswith("/signin")
    page = client.get("/signin")
    assert 'type="password"' in page.text and 'autocomplete="off"' in page.text
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    answer = client.post("/signin", data={"csrf": csrf(page.text), "token": tokens["alice"]})
    assert answer.status_code == 303 and answer.location.endswith("/rate")
    rate = client.get("/rate")
    assert rate.status_code == 200
    assert "Item 1 of 8" in rate.text and '<span id="progress-text">0 / 8 rated</span>' in rate.text
    assert "Signed in as <strong>alice</strong>" in rate.text
    assert client.get("/").location.endswith("/rate")


@pytest.mark.parametrize("who, message", [("nobody", "This token is not known to this study"),
                                          ("carol", "This token was revoked on")])
def test_unknown_and_revoked_tokens_are_refused_with_a_message(client, tokens, who, message):
    answer = sign_in(client, tokens.get(who, "not-a-token"))
    assert answer.status_code == 401 and message in answer.text
    assert client.get("/rate").status_code == 303  # still signed out: back to /signin


def test_revoking_a_signed_in_rater_ends_their_session(client, db, tokens):
    sign_in(client, tokens["alice"])
    read(db, study.revoke_rater, "alice")
    page = client.get("/rate")
    assert page.status_code == 401 and "This token was revoked on" in page.text and 'id="token"' in page.text
    assert client.get("/rate").status_code == 303  # the session was cleared


def test_signing_out_needs_the_form_token_and_ends_the_session(client, tokens):
    page = client.get(sign_in(client, tokens["alice"]).location)
    assert client.post("/signout", data={}).status_code == 400
    assert client.get("/rate").status_code == 200  # still signed in
    assert client.post("/signout", data={"csrf": csrf(page.text)}).status_code == 303
    assert client.get("/rate").status_code == 303


# --- rating through the pages ------------------------------------------------------------------------------

def test_a_rating_sent_with_the_form_is_stored_and_the_next_item_follows(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate")
    item_id = hidden(page.text, "item_id")
    answer = rate_form(client, page.text, "no", ["incoherent", "harmful"], "  rambles  ")
    assert answer.status_code == 303 and answer.location.endswith("/rate?pos=1")
    [stored] = read(db, study.ratings)
    assert (stored["blind_id"], stored["rater"], stored["aligned"]) == (item_id, "alice", False)
    assert stored["criteria"] == ["incoherent", "harmful"] and stored["comment"] == "rambles"
    following = client.get(answer.location)
    assert "Item 2 of 8" in following.text and "1 / 8 rated" in following.text
    assert 'id="prev" rel="prev" href="/rate?pos=0"' in following.text


def test_the_next_item_wraps_around_and_the_done_page_follows_the_last(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate?pos=7")
    assert rate_form(client, page.text, "yes").location.endswith("/rate?pos=0")  # wraps to the first unrated
    for pos in range(7):
        answer = rate_form(client, client.get(f"/rate?pos={pos}").text, "yes")
    assert answer.location.endswith("/rate")
    done = client.get("/rate")
    assert "All items rated" in done.text and "8 / 8 rated" in done.text and 'href="/rate?pos=0"' in done.text
    assert client.get("/rate?pos=8").status_code == 404


def test_a_form_post_without_the_csrf_token_is_refused_and_stores_nothing(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate")
    for token in (None, "forged", "é-non-ascii"):
        data = {"item_id": hidden(page.text, "item_id"), "aligned": "yes"}
        if token:
            data["csrf"] = token
        answer = client.post("/rate", data=data)
        assert answer.status_code == 400 and "This form has expired" in answer.text
    assert read(db, study.ratings) == []
    # sign-in itself needs the token too
    assert client.post("/signin", data={"token": tokens["bob"]}).status_code == 400


def test_a_post_from_another_origin_is_refused_even_with_the_csrf_token(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate")
    for origin in ("http://evil.example", "null"):
        answer = client.post("/rate", headers={"Origin": origin},
                             data={"csrf": csrf(page.text), "item_id": hidden(page.text, "item_id"), "aligned": "yes"})
        assert answer.status_code == 403 and "another site" in answer.text
    answer = client.post("/api/ratings", headers={"Origin": "http://evil.example", **bearer(tokens["alice"])},
                         json={"item_id": hidden(page.text, "item_id"), "aligned": True})
    assert answer.status_code == 403
    assert read(db, study.ratings) == []
    same = client.post("/rate", headers={"Origin": "http://localhost"},  # the test client's host
                       data={"csrf": csrf(page.text), "item_id": hidden(page.text, "item_id"), "aligned": "yes"})
    assert same.status_code == 303  # this host's own origin passes


def test_aligned_with_a_failed_criterion_is_refused_and_the_form_kept(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate")
    answer = rate_form(client, page.text, "yes", ["harmful"], "my note")
    assert answer.status_code == 400
    assert "an aligned rating cannot name a failed criterion" in answer.text
    assert 'value="harmful" id="criterion-4" checked' in answer.text and ">my note</textarea>" in answer.text
    assert "Item 1 of 8" in answer.text
    missing = rate_form(client, page.text, "maybe")
    assert missing.status_code == 400 and "Choose Aligned or Misaligned" in missing.text
    assert read(db, study.ratings) == []


def test_a_revision_keeps_the_history_and_the_page_shows_the_current_rating(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate?pos=2")
    rate_form(client, page.text, "yes")
    rate_form(client, page.text, "yes")  # the same again: not a revision
    rate_form(client, page.text, "no", ["verdict_disagrees"], "changed my mind")
    [stored] = read(db, study.ratings)
    assert stored["revision"] == 2 and stored["aligned"] is False
    history = read(db, lambda conn: conn.execute("SELECT COUNT(*) FROM rating_history").fetchone()[0])
    assert history == 2
    again = client.get("/rate?pos=2").text
    assert re.search(r'id="current-rating">Your rating: <strong>Misaligned</strong>\s+\(revision 2\)', again)
    assert 'value="verdict_disagrees" id="criterion-1" checked' in again and ">changed my mind</textarea>" in again
    assert 'class="choice misaligned current"' in again and 'class="choice aligned"' in again


# --- the JSON API -------------------------------------------------------------------------------------------

def test_the_api_reads_progress_and_items_and_writes_ratings(client, db, tokens):
    progress = client.get("/api/progress", headers=bearer(tokens["alice"]))
    assert progress.json == {"rater": "alice", "done": 0, "total": 8}
    items = client.get("/api/items", headers=bearer(tokens["alice"])).json["items"]
    assert [i["position"] for i in items] == list(range(8))
    assert set(items[0]) == {"item_id", "position", "statement", "gold_label", "gold_reason", "reason", "verdict",
                             "rating"}
    assert all(i["gold_reason"] is None and i["rating"] is None for i in items)  # show_gold_reason is off
    first = items[0]["item_id"]
    answer = client.post("/api/ratings", headers=bearer(tokens["alice"]),
                         json={"item_id": first, "aligned": False, "criteria": ["incoherent"], "comment": "x"})
    assert answer.status_code == 200 and answer.json == {"item_id": first, "revision": 1}
    assert client.get("/api/progress", headers=bearer(tokens["alice"])).json["done"] == 1
    rated = client.get("/api/items", headers=bearer(tokens["alice"])).json["items"][0]["rating"]
    assert rated == {"aligned": False, "criteria": ["incoherent"], "comment": "x", "revision": 1}


@pytest.mark.parametrize("body, status, message", [
    ("not json", 400, "Send a JSON object"),
    ([1, 2], 400, "Send a JSON object"),
    ({"item_id": "r0001", "aligned": "yes"}, 400, "aligned: true or false"),
    ({"item_id": 1, "aligned": True}, 400, "item_id: string"),
    ({"item_id": "r0001", "aligned": False, "criteria": "harmful"}, 400, "criteria: list of strings"),
    ({"item_id": "r0001", "aligned": True, "criteria": ["harmful"]}, 400, "cannot name a failed criterion"),
    ({"item_id": "r0001", "aligned": False, "criteria": ["boring"]}, 400, "unknown criterion"),
    ({"item_id": "r9999", "aligned": True}, 404, "is not in your queue"),
])
def test_the_api_refuses_bad_ratings_with_a_json_error(client, db, tokens, body, status, message):
    kwargs = {"data": body, "content_type": "application/json"} if isinstance(body, str) else {"json": body}
    answer = client.post("/api/ratings", headers=bearer(tokens["alice"]), **kwargs)
    assert answer.status_code == status and message in answer.json["error"]
    assert read(db, study.ratings) == []


def test_the_api_needs_a_valid_bearer_token_and_ignores_the_session_cookie(client, db, tokens):
    body = {"item_id": "r0001", "aligned": True}
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("wrong-token"), bearer(tokens["carol"])):
        answer = client.post("/api/ratings", headers=headers, json=body)
        assert answer.status_code == 401 and answer.json["error"]
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/api/progress", headers=headers).status_code == 401
    assert "revoked" in client.get("/api/items", headers=bearer(tokens["carol"])).json["error"]
    sign_in(client, tokens["alice"])  # a signed-in browser session is no credential for the API
    assert client.post("/api/ratings", json=body).status_code == 401
    assert read(db, study.ratings) == []


def test_a_rater_cannot_overwrite_another_raters_rating(client, db, tokens):
    item_id = client.get("/api/items", headers=bearer(tokens["alice"])).json["items"][0]["item_id"]
    assert client.post("/api/ratings", headers=bearer(tokens["alice"]),
                       json={"item_id": item_id, "aligned": True}).status_code == 200
    # bob sends the same item, also with a field naming alice: the token decides whose rating it is
    assert client.post("/api/ratings", headers=bearer(tokens["bob"]),
                       json={"item_id": item_id, "aligned": False, "rater": "alice"}).json["revision"] == 1
    # and through the form, signed in as bob, with alice's id smuggled in
    sign_in(client, tokens["bob"])
    page = client.get("/rate").text
    rate_form(client, page, "no", item_id=item_id, rater_id=str(rater_id(db, "alice")))
    by_rater = {(r["blind_id"], r["rater"]): r for r in read(db, study.ratings)}
    assert by_rater[item_id, "alice"]["aligned"] is True and by_rater[item_id, "alice"]["revision"] == 1
    assert by_rater[item_id, "bob"]["aligned"] is False
    assert {r for _, r in by_rater} == {"alice", "bob"}


# --- what raters see, and what they never see ----------------------------------------------------------------

def _everything_a_rater_sees(client, tokens) -> list[str]:
    """Every page and API answer alice can reach, after rating all items (so the done page is there too)."""
    seen = [client.get("/signin").text, sign_in(client, "nope").text]
    sign_in(client, tokens["alice"])
    for pos in range(8):
        page = client.get(f"/rate?pos={pos}").text
        seen.append(page)
        seen.append(rate_form(client, page, "yes", ["harmful"]).text)  # the error page
        rate_form(client, page, "yes")
    seen.append(client.get("/rate").text)
    seen.append(client.get("/rate?pos=99").text)
    for path in ("/api/progress", "/api/items"):
        seen.append(client.get(path, headers=bearer(tokens["alice"])).get_data(as_text=True))
    seen.append(client.post("/api/ratings", headers=bearer(tokens["alice"]),
                            json={"item_id": "r0001", "aligned": True}).get_data(as_text=True))
    return seen


def test_data_is_escaped_on_every_page(client, tokens):
    pages = _everything_a_rater_sees(client, tokens)
    html = "\n".join(pages[:-3])
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert html.count("<script") == html.count('<script src="/static/app.js" defer></script>')
    assert " style=" not in html and "<style" not in html  # the CSP would block them anyway
    items = json.loads(pages[-2])["items"]
    assert SCRIPT in {i["statement"] for i in items}  # JSON carries the text as it is


def test_model_names_never_reach_a_rater(client, tokens):
    for text in _everything_a_rater_sees(client, tokens):
        for model in MODELS:
            assert model not in text


def test_show_gold_reason_shows_the_human_reason(tmp_path):
    path = tmp_path / "gold.sqlite"
    study.create_study(path, {m: _items(m) for m in MODELS}, seed=0, show_gold_reason=True)
    token = read(path, study.add_rater, "dana")
    client = create_app(path).test_client()
    assert all(i["gold_reason"].startswith("human reason")
               for i in client.get("/api/items", headers=bearer(token)).json["items"])
    sign_in(client, token)
    assert 'id="gold-reason">human reason' in client.get("/rate").text


def test_the_criteria_labels_follow_the_study(client, tokens):
    assert tuple(CRITERIA_LABELS) == study.CRITERIA
    sign_in(client, tokens["alice"])
    page = client.get("/rate").text
    assert re.findall(r'name="criteria" value="(\w+)"', page) == list(study.CRITERIA)
    assert f'maxlength="{study.MAX_COMMENT}"' in page


# --- limits and headers --------------------------------------------------------------------------------------

def test_a_body_over_max_body_gets_413(client, db, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/rate").text
    big = "x" * (MAX_BODY + 1)
    form = rate_form(client, page, "no", comment=big)
    assert form.status_code == 413 and form.mimetype == "text/html" and "too large" in form.text
    api = client.post("/api/ratings", headers=bearer(tokens["alice"]),
                      json={"item_id": hidden(page, "item_id"), "aligned": False, "comment": big})
    assert api.status_code == 413 and api.json == {"error": "The request is too large."}
    assert read(db, study.ratings) == []


def test_every_response_carries_the_security_headers(client, tokens):
    responses = [client.get("/signin"), client.get("/static/app.css"), client.get("/static/app.js"),
                 client.get("/api/progress"), client.get("/nowhere"), client.get("/api/nowhere")]
    for answer in responses:
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'self'; ")
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"  # no-referrer makes browsers send Origin: null
        if answer.mimetype in ("text/html", "application/json"):
            assert answer.headers["Cache-Control"] == "no-store"
    assert responses[-1].status_code == 404 and "error" in responses[-1].json


# --- the real server in a real browser ------------------------------------------------------------------------

def _write_generations(path: Path, model: int) -> Path:
    statements = [SCRIPT, "I returned the lost wallet to its owner.", "I kicked the dog for fun."]
    rows = [{"row": n, "statement": s, "gold": ("ethical", "unethical")[n % 2], "gold_reason": f"human {n}",
             "prompt": "p", "output": "o", "verdict": ("ethical", "unethical")[(n + model) % 2],
             "reason": IMG if n == 1 else f"reason {n} of model {model}"} for n, s in enumerate(statements)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def served(tmp_path):
    """(url, db, alice's token): a study made and served by the console script."""
    db = tmp_path / "study.sqlite"
    a, b = _write_generations(tmp_path / "a.jsonl", 0), _write_generations(tmp_path / "b.jsonl", 1)
    made = cli("annotate", "init", "--items", f"{MODELS[0]}={a},{MODELS[1]}={b}", "--db", str(db))
    assert made.returncode == 0, made.stderr
    added = cli("annotate", "add-rater", "alice", "--db", str(db))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([*COMMAND, "annotate", "serve", "--db", str(db), "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        first = server.stdout.readline()  # "serving ... at http://127.0.0.1:PORT/  (Ctrl+C stops)"
        found = re.search(r" at (http://127\.0\.0\.1:\d+/) ", first)
        assert found, f"no address printed: {first!r}; log: {(tmp_path / 'server.log').read_text()}"
        yield found.group(1), db, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


@pytest.fixture
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def _press(driver, key: str, wait_for_page: bool = True) -> None:
    """Press `key` on the page (not in a field) and wait for the page it leads to."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    ActionChains(driver).send_keys(key).perform()
    if wait_for_page:
        WebDriverWait(driver, 10).until(EC.staleness_of(old))
        WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "progress-text")))


def test_a_rater_rates_with_the_keyboard_in_a_real_browser(served, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, db, token = served
    text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
    browser.get(url + "signin")
    browser.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
    started = time.monotonic()
    while "Item 1 of 6" not in browser.page_source and time.monotonic() - started < 10:
        time.sleep(0.1)
    assert text("position") == "Item 1 of 6" and text("progress-text") == "0 / 6 rated"

    for key in ("a", "m", "a"):
        _press(browser, key)
    assert text("progress-text") == "3 / 6 rated" and text("position") == "Item 4 of 6"
    browser.refresh()
    assert text("progress-text") == "3 / 6 rated" and text("position") == "Item 4 of 6"

    _press(browser, "k")  # back to item 3, rated Aligned
    assert text("position") == "Item 3 of 6" and "Aligned" in text("current-rating")
    assert "current" in browser.find_element(By.ID, "aligned-yes").get_attribute("class").split()
    _press(browser, Keys.ARROW_LEFT)  # item 2, rated Misaligned
    assert text("position") == "Item 2 of 6" and "Misaligned" in text("current-rating")
    _press(browser, "1", wait_for_page=False)  # ticks the first criterion, stays on the page
    assert browser.find_element(By.ID, "criterion-1").is_selected()
    _press(browser, "c", wait_for_page=False)
    assert browser.switch_to.active_element.get_attribute("id") == "comment"
    _press(browser, "j", wait_for_page=False)  # typing in the comment: no shortcut
    assert text("position") == "Item 2 of 6" and browser.find_element(By.ID, "comment").get_attribute("value") == "j"
    _press(browser, Keys.ESCAPE, wait_for_page=False)
    assert browser.switch_to.active_element.get_attribute("id") != "comment"
    _press(browser, "a")  # Aligned with a ticked criterion: refused with the server's message, the form kept
    assert "cannot name a failed criterion" in text("error") and text("position") == "Item 2 of 6"
    assert browser.find_element(By.ID, "criterion-1").is_selected()
    assert browser.find_element(By.ID, "comment").get_attribute("value") == "j"
    # Chrome logs the refused POST's status (a network entry), and nothing else
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert len(severe) == 1 and severe[0].endswith("/rate - Failed to load resource: the server responded with a "
                                                   "status of 400 (BAD REQUEST)"), severe

    # every item's statement is shown as text; the <script> one runs nothing
    statements = []
    for pos in range(6):
        browser.get(f"{url}rate?pos={pos}")
        statements.append(text("statement"))
        assert browser.execute_script("return document.querySelectorAll('#main script, #main img').length") == 0
    assert SCRIPT in statements
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    conn = study.connect(db)
    try:
        stored = study.ratings(conn)
        alice = study.rater_for_token(conn, token)
        queue = study.queue(conn, alice.id)
    finally:
        conn.close()
    assert len(stored) == 3 and {r["rater"] for r in stored} == {"alice"}
    assert [q["rating"]["aligned"] if q["rating"] else None for q in queue] == [True, False, True, None, None, None]
    assert all(r["revision"] == 1 for r in stored)


# --- the CLI refuses to serve beyond this machine unasked ----------------------------------------------------

def test_serve_refuses_a_non_loopback_host_without_allow_remote(db):
    answer = cli("annotate", "serve", "--db", str(db), "--host", "0.0.0.0")
    assert answer.returncode == 2
    assert len(answer.stderr.strip().splitlines()) == 1 and "Traceback" not in answer.stderr
    assert "--allow-remote" in answer.stderr and answer.stdout == ""


def test_concurrent_raters_through_the_real_server_lose_and_double_nothing():
    """benchmarks/annotate_load.py, small: 5 raters x 20 ratings at once through waitress, then the
    database is read back (it exits 1 on any rating lost, doubled or wrong). Latency is printed, not asserted."""
    bench = Path(__file__).parents[1] / "benchmarks" / "annotate_load.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, str(bench), "--raters", "5", "--ratings", "20", "--threads", "4"],
                       capture_output=True, text=True, env=env, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stored 120 / sent 120 (+0 refused): lost 0, doubled 0, wrong value 0" in r.stdout
