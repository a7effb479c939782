"""Batched text generation, the one place every command generates through.

Prompts are tokenised one by one (exactly as training tokenised them), sorted by length so a
batch holds similar lengths (little padding), left-padded (so every row's next token sits in
the last column and the KV cache works for the whole batch) and put back in input order.

Sampling is seeded per batch (`seed` + the batch's index), so a rerun with the same prompts, seed
and batch size gives the same texts, in one process or several (`core.distributed.map_chunks`
deals the batches to the processes); a different batch size gives other (equally valid) samples.

`repetition_penalty` (> 1 discourages every token already in the prompt or the continuation) and
`no_repeat_ngram_size` (n > 0: no n-gram appears twice) apply to greedy and sampled decoding
alike; their neutral values (1.0, 0) are not passed to `model.generate` at all. `decoding()`
describes a call's decoding for the records (generate_summary.json, metrics.json, ...).

`cache="static"` decodes with a fixed-size KV cache, for which transformers compiles the decoding
step on a GPU (the per-step Python and kernel-launch cost that bounds a small model's decoding);
prompt widths are then padded to a multiple of `STATIC_WIDTH`, so batches repeat a few shapes
and the compiled step is reused. Greedy texts are the same with either cache. `resolve_cache("auto")` picks
static on a GPU (5-10x the tokens/s of dynamic for a 1B model on an H200: benchmarks/gpu_checks.sh) and
dynamic on a CPU (no compilation there; it was measured no faster).
"""

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList, TopPLogitsWarper

from reasonalign.core.distributed import is_main, map_chunks
from reasonalign.core.errors import UserError

CACHES = ("auto", "dynamic", "static")
STATIC_WIDTH = 64  # with the static cache, prompt widths are padded to a multiple of this


def resolve_cache(cache: str, device) -> str:
    """`auto` -> static on a CUDA device, dynamic elsewhere; other names are checked and returned."""
    if cache not in CACHES:
        raise UserError(f"--kv-cache {cache!r}: choose from {', '.join(CACHES)}")
    if cache != "auto":
        return cache
    return "static" if torch.device(device).type == "cuda" else "dynamic"


def check_decoding(*, temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.0,
                   no_repeat_ngram_size: int = 0) -> None:
    """One-line `UserError` for a decoding option `model.generate` would refuse or misread."""
    if temperature < 0:
        raise UserError(f"--temperature {temperature}: must be at least 0 (0 = greedy)")
    if temperature > 0 and not 0 < top_p <= 1:
        raise UserError(f"--top-p {top_p}: must be in (0, 1]")
    if not repetition_penalty > 0:
        raise UserError(f"--repetition-penalty {repetition_penalty}: must be above 0 (1.0 = off, above 1 "
                        "discourages repeats)")
    if no_repeat_ngram_size < 0:
        raise UserError(f"--no-repeat-ngram-size {no_repeat_ngram_size}: must be at least 0 (0 = off)")


def decoding(temperature: float, top_p: float, repetition_penalty: float, no_repeat_ngram_size: int,
             max_new_tokens: int, min_new_tokens: int = 0) -> dict:
    """How texts were decoded, for the records: greedy (temperature 0; top_p unused, so None) or sampling.
    `min_new_tokens` is recorded only when set (records made without it stay as they were)."""
    sampled = temperature > 0
    record = {"strategy": "sampling" if sampled else "greedy", "temperature": temperature if sampled else 0.0,
              "top_p": top_p if sampled else None, "repetition_penalty": repetition_penalty,
              "no_repeat_ngram_size": no_repeat_ngram_size, "max_new_tokens": max_new_tokens}
    return {**record, "min_new_tokens": min_new_tokens} if min_new_tokens else record


def describe(d: dict) -> str:
    """One short phrase for a headline: 'greedy, repetition penalty 1.3, no repeated 3-grams'."""
    parts = ["greedy" if d.get("strategy") == "greedy" else f"sampling (T={d.get('temperature')}, "
                                                                f"top-p {d.get('top_p')})"]
    if d.get("repetition_penalty", 1.0) != 1.0:
        parts.append(f"repetition penalty {d['repetition_penalty']}")
    if d.get("no_repeat_ngram_size"):
        parts.append(f"no repeated {d['no_repeat_ngram_size']}-grams")
    if d.get("min_new_tokens"):
        parts.append(f"no EOS before {d['min_new_tokens']} tokens")
    return ", ".join(parts)


@torch.no_grad()
def generate_texts(model, tokenizer, prompts: list[str], *, add_special_tokens: bool, max_new_tokens: int,
                   batch_size: int = 16, num_return_sequences: int = 1, temperature: float = 0.0,
                   top_p: float = 1.0, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
                   min_new_tokens: int = 0, stop: tuple[str, ...] = (), seed: int | None = None,
                   progress: bool = True, cache: str = "dynamic") -> list[str]:
    """The continuation of every prompt, without the prompt and special tokens (EOS).

    Returns `len(prompts) * num_return_sequences` texts, prompt-major: the k texts of prompt i
    are `texts[i * k:(i + 1) * k]`. Greedy when `temperature` is 0, else sampled with nucleus
    mass `top_p` (no top-k cut, so top_p means what it says). Generation ends at EOS or at any
    `stop` string; the text is cut before the stop string. `repetition_penalty` (1.0 = off) and
    `no_repeat_ngram_size` (0 = off) apply in both modes. `min_new_tokens` > 0 forbids EOS before that
    many new tokens (a model fine-tuned to stop after its label must still write a reason).
    `cache`: "dynamic" (transformers' default) or "static" (see the module's docstring).
    """
    check_decoding(temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty,
                   no_repeat_ngram_size=no_repeat_ngram_size)
    model.eval()
    device = next(model.parameters()).device
    cache = resolve_cache(cache, device)
    k = num_return_sequences
    ids = [tokenizer(p, add_special_tokens=add_special_tokens).input_ids for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    options = dict(max_new_tokens=max_new_tokens, num_return_sequences=k, pad_token_id=pad,
                   eos_token_id=tokenizer.eos_token_id)
    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_k=0)
        if top_p < 1.0:  # transformers would sort the whole vocabulary at every step: see TopP
            options.update(top_p=1.0, logits_processor=LogitsProcessorList([TopP(top_p)]))
    else:
        options.update(do_sample=False)
    if repetition_penalty != 1.0:
        options.update(repetition_penalty=repetition_penalty)
    if no_repeat_ngram_size > 0:
        options.update(no_repeat_ngram_size=no_repeat_ngram_size)
    if min_new_tokens > 0:
        options.update(min_new_tokens=min_new_tokens)
    if stop:  # stop each sequence as soon as it writes a stop string: no tokens wasted after it
        options.update(stop_strings=list(stop), tokenizer=tokenizer)
    multiple = 1
    if cache == "static":
        # a static cache is allocated in one dtype; under autocast an fp32 model's keys (after the fp32 rotary
        # embedding) and values (bf16) differ, and the cache refuses them: load the model in the compute dtype
        if torch.is_autocast_enabled(device.type) and next(model.parameters()).dtype == torch.float32:
            raise UserError("--kv-cache static: the model must be loaded in the compute dtype (bf16/fp16), not fp32 "
                            "under autocast; or use --precision fp32")
        options.update(cache_implementation="static")
        multiple = STATIC_WIDTH
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def run(numbered: tuple[int, list[int]]) -> list[str]:
        index, chunk = numbered
        if seed is not None:  # one seed per batch: the same samples whichever process runs it
            torch.manual_seed(seed + index)
        width = -(-max(len(ids[i]) for i in chunk) // multiple) * multiple
        batch = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for row, i in enumerate(chunk):
            batch[row, width - len(ids[i]):] = torch.tensor(ids[i])
            mask[row, width - len(ids[i]):] = 1
        out = model.generate(input_ids=batch.to(device), attention_mask=mask.to(device), **options)
        # generate repeats each prompt k times in place: rows i0,i0,..,i1,i1,..
        return [cut_at_stop(tokenizer.decode(out[n, width:], skip_special_tokens=True), stop)
                for n in range(len(chunk) * k)]

    texts = [""] * (len(ids) * k)
    numbered = tqdm(list(enumerate(chunks)), desc="generating", unit="batch", disable=not (progress and is_main()),
                    leave=False)
    results = map_chunks(run, numbered)
    for chunk, found in zip(chunks, results):
        for row, i in enumerate(chunk):
            texts[i * k:(i + 1) * k] = found[row * k:(row + 1) * k]
    return texts


class TopP(LogitsProcessor):
    """Nucleus (top-p) filtering that sorts only the most likely tokens, not the whole vocabulary.

    transformers' `TopPLogitsWarper` sorts all V logits at every step; for SmolLM2 (V = 49152) at
    32 sequences that sort was about a third of a sampling step on 2 CPU cores
    (benchmarks/sampling_speed.py: sampling ran at 0.63x the tokens/s of greedy decoding). The
    nucleus nearly always lies within the few hundred likeliest tokens, so `topk` takes those;
    a row whose `candidates` hold less than `top_p` of the mass is filtered by transformers' own
    warper instead. The rule is transformers': keep the likeliest tokens while the mass of the
    tokens before them is below top_p (at least one). Runs after the temperature warper, as
    transformers' top-p does (custom processors come after the built-in ones).

    On a GPU, asking whether any row needs the fallback (`short.any()`) would stop the host at every
    step until the GPU caught up; there the fallback is computed for every row and chosen per row
    (`sync_free`): the same tokens kept, a full sort that costs the GPU little.
    """

    def __init__(self, top_p: float, candidates: int = 256, sync_free: bool | None = None):
        self.top_p, self.candidates, self.sync_free = top_p, candidates, sync_free

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = scores.float().softmax(-1)
        top, index = probs.topk(min(self.candidates, probs.shape[-1]), dim=-1)  # sorted, likeliest first
        keep = (top.cumsum(-1) - top) < self.top_p
        keep[:, 0] = True
        remove = torch.ones_like(scores, dtype=torch.bool).scatter_(1, index, ~keep)
        short = top.sum(-1) < self.top_p  # the nucleus reaches past the candidates
        if scores.is_cuda if self.sync_free is None else self.sync_free:
            full = TopPLogitsWarper(self.top_p)(input_ids, scores) == -float("inf")
            remove = torch.where(short[:, None], full, remove)
        elif short.any():
            rows = short.nonzero()[:, 0]
            remove[rows] = TopPLogitsWarper(self.top_p)(input_ids[rows], scores[rows]) == -float("inf")
        return scores.masked_fill(remove, -float("inf"))


def throughput(tokenizer, texts: list[str], seconds: float) -> dict:
    """Generated tokens (the kept texts re-encoded: EOS and anything cut at a stop string not counted)
    and tokens/s over `seconds` of generation: the speed a caption can quote."""
    tokens = sum(len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts)
    return {"generated_tokens": tokens, "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None}


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to the earliest stop string (all of it when there is none)."""
    ends = [text.find(s) for s in stop if s in text]
    return text[:min(ends)] if ends else text
