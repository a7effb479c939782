"""LLMJudge: an LLM applies the versioned rubric (`rubric_v1.md`) to each generated reason.

Two backends produce the raw answers: a local Hugging Face causal LM, or any OpenAI-compatible
`/v1/chat/completions` endpoint. Raw answers are cached on disk (JSONL, one line per finished
item, appended as results arrive) so an interrupted run resumes where it stopped and a rerun
costs nothing; the cache stores raw text and parsing happens on read, so a parser fix applies
to cached answers too. An answer without a readable `ALIGNED: yes|no` line is recorded as a
judge error (counted misaligned, see `base.Judgement`), never as aligned.
"""

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import tenacity

from reasonalign.judges.base import JUDGE_ERROR, JudgeItem, Judgement
from reasonalign.core.verdict import LABELS

RUBRIC_PATH = Path(__file__).with_name("rubric_v1.md")
RUBRIC_CRITERIA = ("verdict_disagrees", "justification_disagrees", "incoherent", "harmful")
DEFAULT_KEY_ENV = "REASONALIGN_JUDGE_API_KEY"


class JudgeRequestError(Exception):
    """A backend could not produce an answer for one prompt (recorded per item, not raised)."""


def render_prompt(template: str, item: JudgeItem) -> str:
    """Fill `{name}` placeholders in one pass, so braces inside user text are left alone."""
    values = {
        "statement": item.statement.strip(),
        "gold_verdict": LABELS[item.gold_label],
        "gold_reason": (item.gold_reason or "").strip() or "(no human justification available)",
        "verdict": LABELS[item.verdict] if item.verdict is not None else "(none given)",
        "reason": item.reason.strip() or "(empty)",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _last_field(name: str, text: str) -> str | None:
    # Tolerates markdown decoration ("**ALIGNED:** yes") but requires the field to open a line.
    hits = re.findall(rf"^[\s*#>_`-]*{name}[\s*_`]*:[\s*_`]*(.*)$", text, re.I | re.M)
    return hits[-1].strip() if hits else None


def parse_judge_output(text: str) -> tuple[bool, list[str], str] | str:
    """(aligned, failed criteria, rationale), or an error message when the answer is unusable."""
    answer = _last_field("ALIGNED", text)
    m = re.match(r"(yes|no)\b", answer or "", re.I)
    if not m:
        return "unparseable judge output: no 'ALIGNED: yes|no' line"
    aligned = m.group(1).lower() == "yes"
    failed_text = (_last_field("FAILED", text) or "").lower()
    failed = [c for c in RUBRIC_CRITERIA if c in failed_text]
    if aligned and failed:
        return f"inconsistent judge output: ALIGNED yes but FAILED lists {', '.join(failed)}"
    if not aligned and not failed:
        failed = ["unspecified"]
    return aligned, failed, _last_field("RATIONALE", text) or ""


class HTTPBackend:
    """OpenAI-compatible chat endpoint (httpx2 client, tenacity retries), bounded concurrency.

    Retries (exponential backoff `backoff * 2**k`) on connection errors, timeouts, 429 and
    5xx, which are transient; other 4xx mean the request itself is wrong and fail at once.
    The API key is read from the environment variable named `api_key_env` at request time and
    is never stored, logged or put in error messages; without it no Authorization header is
    sent (local servers such as vLLM need none).
    """

    def __init__(self, url: str, model: str, *, api_key_env: str = DEFAULT_KEY_ENV,
                 max_workers: int = 4, timeout: float = 60.0, retries: int = 3,
                 backoff: float = 1.0, max_tokens: int = 256):
        self.url = url if url.rstrip("/").endswith("/chat/completions") else url.rstrip("/") + "/v1/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.max_workers, self.timeout, self.retries, self.backoff = max_workers, timeout, retries, backoff
        self.max_tokens = max_tokens
        self.identity = f"http:{model}:temperature=0:max_tokens={max_tokens}"
        # A judge server on this machine must never be reached through an HTTP proxy.
        local = urlparse(self.url).hostname in ("127.0.0.1", "localhost", "::1")
        self._client = httpx2.Client(timeout=timeout, trust_env=not local)  # thread-safe, shared by workers
        # Retry state lives in thread-locals, so one Retrying serves all workers.
        self._retrying = tenacity.Retrying(retry=tenacity.retry_if_exception(self._transient),
                                           stop=tenacity.stop_after_attempt(retries + 1),
                                           wait=tenacity.wait_exponential(multiplier=backoff), reraise=True)

    @staticmethod
    def _transient(exc: BaseException) -> bool:
        if isinstance(exc, httpx2.HTTPStatusError):
            return exc.response.status_code == 429 or exc.response.status_code >= 500
        return isinstance(exc, httpx2.TransportError)  # connection errors and timeouts

    def _send(self, payload: dict, headers: dict) -> httpx2.Response:
        return self._client.post(self.url, json=payload, headers=headers).raise_for_status()

    def _post(self, prompt: str) -> str:
        payload = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                   "messages": [{"role": "user", "content": prompt}]}
        headers = {}
        if key := os.environ.get(self.api_key_env):
            headers["Authorization"] = f"Bearer {key}"
        try:
            resp = self._retrying(self._send, payload, headers)
        except httpx2.HTTPStatusError as exc:
            code = exc.response.status_code
            if not self._transient(exc):
                hint = f" (is ${self.api_key_env} set?)" if code in (401, 403) else ""
                raise JudgeRequestError(f"HTTP {code} from {self.url}{hint}") from None
            last = f"HTTP {code}"
        except httpx2.TransportError as exc:
            last = f"timed out after {self.timeout}s" if isinstance(exc, httpx2.TimeoutException) else str(exc)
        except httpx2.HTTPError as exc:  # not transient (e.g. a body that cannot be decoded): this item only
            raise JudgeRequestError(f"{self.url}: {exc}") from None
        else:
            try:
                return resp.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise JudgeRequestError(f"malformed response from {self.url}: {resp.content[:200]!r}") from None
        raise JudgeRequestError(f"{self.url}: gave up after {self.retries + 1} attempts (last: {last})")

    def complete(self, prompts: list[str]):
        """Yield (index, answer or JudgeRequestError) as requests finish, in any order."""
        pool = ThreadPoolExecutor(max_workers=self.max_workers)
        try:
            futures = {pool.submit(self._post, p): i for i, p in enumerate(prompts)}
            for fut in as_completed(futures):
                try:
                    yield futures[fut], fut.result()
                except JudgeRequestError as exc:
                    yield futures[fut], exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class HFBackend:
    """Local causal LM: greedy decoding, batched with left padding (so answers start aligned).

    `model` is a loaded model (with `tokenizer`) or a local path; remote code is never
    trusted. The prompt goes through the tokenizer's chat template when it has one. The
    tokenizer's padding side is set to left (and pad = eos when it has no pad token).
    """

    def __init__(self, model, tokenizer=None, *, batch_size: int = 4, max_new_tokens: int = 256):
        if isinstance(model, (str, Path)):
            from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only this backend needs it

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model))
            model = AutoModelForCausalLM.from_pretrained(str(model))
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.identity = f"hf:{name}:greedy:max_new_tokens={max_new_tokens}"

    def complete(self, prompts: list[str]):
        import torch  # heavy: only this backend needs it

        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        chat = bool(getattr(tok, "chat_template", None))
        if chat:
            prompts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts]
        for start in range(0, len(prompts), self.batch_size):
            enc = tok(prompts[start : start + self.batch_size], return_tensors="pt", padding=True,
                      add_special_tokens=not chat)
            with torch.no_grad():
                out = self.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                          do_sample=False, max_new_tokens=self.max_new_tokens,
                                          pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for k, text in enumerate(texts):
                yield start + k, text


class LLMJudge:
    """Rubric-driven judge over a backend, with a resumable disk cache.

    Cache key = sha256(backend identity, rubric hash, rendered prompt): changing the model, the
    decoding settings or one character of the rubric never reuses a stale answer.
    """

    def __init__(self, backend, *, cache_dir: str | Path | None = None, rubric_path: str | Path = RUBRIC_PATH):
        self.backend = backend
        self.template = Path(rubric_path).read_text(encoding="utf-8")
        rubric_hash = hashlib.sha256(self.template.encode()).hexdigest()[:12]
        self.version = f"{Path(rubric_path).stem}-{rubric_hash}"
        self.name = f"llm:{backend.identity}"
        self.cache_path = Path(cache_dir) / "llm_judge_cache.jsonl" if cache_dir else None

    def _key(self, prompt: str) -> str:
        return hashlib.sha256(json.dumps([self.backend.identity, self.version, prompt]).encode()).hexdigest()

    def _load_cache(self) -> dict[str, str]:
        cache = {}
        if self.cache_path and self.cache_path.exists():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    cache[entry["key"]] = entry["output"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by an interruption: that item is simply redone
        return cache

    def _open_cache(self):
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.cache_path.exists() and not self.cache_path.read_bytes().endswith(b"\n") \
            and self.cache_path.stat().st_size > 0
        f = self.cache_path.open("a", encoding="utf-8")
        if torn:
            f.write("\n")
        return f

    def judge(self, items: list[JudgeItem]) -> list[Judgement]:
        prompts = [render_prompt(self.template, it) for it in items]
        keys = [self._key(p) for p in prompts]
        cache = self._load_cache()
        outputs = {i: cache[k] for i, k in enumerate(keys) if k in cache}
        todo = [i for i in range(len(items)) if i not in outputs]
        errors: dict[int, str] = {}
        cache_file = self._open_cache() if self.cache_path and todo else None
        try:
            for j, out in self.backend.complete([prompts[i] for i in todo]):
                i = todo[j]
                if isinstance(out, Exception):
                    errors[i] = str(out)
                    continue
                outputs[i] = out
                if cache_file:
                    cache_file.write(json.dumps({"key": keys[i], "item_id": items[i].item_id, "output": out}) + "\n")
                    cache_file.flush()
        finally:
            if cache_file:
                cache_file.close()
        return [self._judgement(it, outputs.get(i), errors.get(i)) for i, it in enumerate(items)]

    def _judgement(self, item: JudgeItem, output: str | None, error: str | None) -> Judgement:
        parsed = parse_judge_output(output) if output is not None else error
        if isinstance(parsed, str):
            return Judgement(item.item_id, False, parsed, [JUDGE_ERROR], error=parsed,
                             details={"output": output})
        aligned, failed, rationale = parsed
        return Judgement(item.item_id, aligned, rationale, [] if aligned else failed,
                         details={"output": output})


class VotingJudge:
    """Majority vote of several judges; per-judge results are kept in `per_judge` for agreement.

    Ties count as misaligned: a reason that half the judges reject is not one we can call
    aligned with human reasoning. Judges that errored on an item abstain on it; if all do, the
    vote is an error too.
    """

    def __init__(self, judges: list):
        self.judges = judges
        self.names = []
        for j in judges:
            name = j.name
            while name in self.names:
                name += "'"
            self.names.append(name)
        self.name = "vote(" + ", ".join(self.names) + ")"
        self.version = ", ".join(f"{n}={j.version}" for n, j in zip(self.names, judges))
        self.per_judge: dict[str, list[Judgement]] = {}

    def judge(self, items: list[JudgeItem]) -> list[Judgement]:
        return self.combine(items, [j.judge(items) for j in self.judges])

    def combine(self, items: list[JudgeItem], results: list[list[Judgement]]) -> list[Judgement]:
        """The vote over judgements the judges already made (one list per judge, in order)."""
        self.per_judge = dict(zip(self.names, results))
        return [self._vote(it, [res[i] for res in results]) for i, it in enumerate(items)]

    def _vote(self, item: JudgeItem, votes: list[Judgement]) -> Judgement:
        tally = {n: ("error" if v.error else v.aligned) for n, v in zip(self.names, votes)}
        valid = [v for v in votes if v.error is None]
        if not valid:
            return Judgement(item.item_id, False, "all judges failed", [JUDGE_ERROR],
                             error="all judges failed", details={"votes": tally})
        yes = sum(v.aligned for v in valid)
        aligned = yes > len(valid) / 2
        criteria = [] if aligned else sorted({c for v in valid if not v.aligned for c in v.criteria})
        rationale = f"{yes} of {len(valid)} judges: aligned" + ("" if aligned else " (majority or tie: misaligned)")
        return Judgement(item.item_id, aligned, rationale, criteria, details={"votes": tally})
