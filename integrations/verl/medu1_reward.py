"""Med-U1 rewards for verl, computed by a running `medu1 serve`.

Three entry points, one per verl reward path (verl 0.9.1):

* `compute_score`: the per-sample function of the legacy `NaiveRewardManager` (`reward_model.
  reward_manager=naive`) and of the 0.9 reward loop (verl runs a plain function there in a thread
  pool; the HTTP connection is per thread, so that is safe).
* `compute_score_async`: the same as a coroutine, for the reward loop's event loop.
* `compute_score_batch`: verl's `BatchRewardManager` (`reward_manager=batch`); one HTTP request per
  batch instead of one per sample.

    custom_reward_function.path=integrations/verl/medu1_reward.py
    custom_reward_function.name=compute_score            # or compute_score_batch / _async
    +custom_reward_function.reward_kwargs.max_response_length=${data.max_response_length}

and one server per node, loaded with the policy's tokenizer (it counts response tokens):

    medu1 serve --addr 127.0.0.1:8000 --tokenizer /path/to/policy/model

What verl hands a reward function: `data_source`, the response decoded with special tokens
*skipped*, `reward_model.ground_truth`, and the row's own `extra_info` (plus `num_turns` and
`rollout_reward_scores`), never the rest of `reward_model`. So:

* budget and limits come from `extra_info` (`num_tokens`, `lower_limit`, `upper_limit`), where
  `medu1 data prepare --label-format verl` writes them. For the released Med-U1 files, whose
  `extra_info` holds only `index` and `split`, point `MEDU1_REWARD_ROWS` (or the `rows` reward
  kwarg) at those files: the shim looks each sample's `reward_model` up by (data_source, split,
  index, ground truth). A row with neither is an error, never a silent "no budget".
* the response length L (spec §3: generated tokens including the end-of-sequence token) is counted
  by the server under `eos: "stripped"`: the EOS verl's decoding removed is added back unless the
  count reaches `max_response_length` (the response was truncated and has none). With
  `extra_info["response_length"]` set, that exact count is used instead.

Failure policy: a 4xx (a bad row) raises `Medu1RewardError` with the server's message, always.
A server that is down, answers 5xx or exceeds the timeout is retried; after the retries the call
raises `Medu1RewardUnavailable`, unless a fallback reward is configured (`fallback_reward` kwarg or
`MEDU1_REWARD_FALLBACK`), in which case it logs a warning and returns that reward with
`fallback = 1.0`, the key verl then logs per batch.

Settings (reward kwargs take precedence over the environment):
    url                  MEDU1_REWARD_URL       server base URL (default http://127.0.0.1:8000)
    timeout              MEDU1_REWARD_TIMEOUT   seconds per request (default 30)
    retries              MEDU1_REWARD_RETRIES   retries on connection errors, 5xx, timeouts (3)
    fallback_reward      MEDU1_REWARD_FALLBACK  reward when the server stays unavailable
    rows                 MEDU1_REWARD_ROWS      released rows (JSONL/parquet), comma-separated
    max_response_length  MEDU1_MAX_RESPONSE_LENGTH  verl's data.max_response_length

Standard library only (pyarrow for parquet rows). Every result has the same keys: score, acc,
format, answer, length, format_valid, fallback.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.parse

ASSISTANT_HEADER = "<|im_start|>assistant\n"
KEYS = ("score", "acc", "format", "answer", "length", "format_valid", "fallback")

log = logging.getLogger("medu1_reward")
_local = threading.local()
_rows_cache: dict[str, dict] = {}
_rows_lock = threading.Lock()


class Medu1RewardError(RuntimeError):
    """The server rejected a sample, or the row lacks what the reward needs (the message says)."""


class Medu1RewardUnavailable(Medu1RewardError):
    """The server could not be reached or did not answer in time, after the retries."""


def _setting(kwargs, key, env, default=None):
    if kwargs.get(key) is not None:
        return kwargs[key]
    return os.environ.get(env, default)


def _config(kwargs):
    url = urllib.parse.urlsplit(str(_setting(kwargs, "url", "MEDU1_REWARD_URL", "http://127.0.0.1:8000")))
    timeout = float(_setting(kwargs, "timeout", "MEDU1_REWARD_TIMEOUT", "30"))
    retries = int(_setting(kwargs, "retries", "MEDU1_REWARD_RETRIES", "3"))
    fallback = _setting(kwargs, "fallback_reward", "MEDU1_REWARD_FALLBACK")
    return url, timeout, retries, None if fallback in (None, "") else float(fallback)


def _connection(url, timeout):
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "key", None) != (url.netloc, timeout):
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=timeout)
        _local.conn, _local.key = conn, (url.netloc, timeout)
    return conn


def _post(path, payload, kwargs):
    url, timeout, retries, _ = _config(kwargs)
    body = json.dumps(payload).encode("utf-8")
    last = None
    for attempt in range(retries + 1):
        conn = _connection(url, timeout)
        try:
            conn.request("POST", url.path.rstrip("/") + path, body,
                         {"Content-Type": "application/json", "Connection": "keep-alive"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 500:
                last = f"server error {resp.status}: {data[:500]!r}"
            elif resp.status >= 400:
                raise Medu1RewardError(
                    f"medu1 rejected the request ({resp.status}): {data.decode('utf-8', 'replace')}")
            else:
                return json.loads(data)
        except (ConnectionError, http.client.HTTPException, OSError, socket.timeout) as e:
            last = f"{type(e).__name__}: {e}"
            conn.close()
            _local.conn = None
        if attempt < retries:
            time.sleep(min(2.0, 0.1 * 2 ** attempt))
    raise Medu1RewardUnavailable(
        f"medu1 reward server at {url.geturl()} unavailable after {retries + 1} tries: {last}")


def _load_rows(paths):
    """(data_source, split, index, ground_truth) -> reward_model, over the released files; None
    marks a key two different rows share."""
    with _rows_lock:
        if paths in _rows_cache:
            return _rows_cache[paths]
        table: dict = {}
        for path in [p for p in paths.split(",") if p]:
            if path.endswith(".parquet"):
                import pyarrow.parquet as pq

                rows = pq.read_table(path).to_pylist()
            else:
                with open(path, encoding="utf-8") as f:
                    rows = [json.loads(line) for line in f if line.strip()]
            for row in rows:
                ei = row.get("extra_info") or {}
                rm = row["reward_model"]
                key = (row["data_source"], ei.get("split"), ei.get("index"), str(rm["ground_truth"]))
                if key in table and table[key] != rm:
                    table[key] = None
                else:
                    table[key] = rm
        _rows_cache[paths] = table
        return table


def reward_fields(data_source, ground_truth, extra_info, kwargs=None):
    """num_tokens and limits of one sample: from extra_info, else from the released rows."""
    extra = extra_info or {}
    kwargs = kwargs or {}
    if "num_tokens" in extra:
        return {k: extra.get(k) for k in ("num_tokens", "lower_limit", "upper_limit")}
    rm = extra.get("reward_model")
    if isinstance(rm, dict) and "num_tokens" in rm:
        return {k: rm.get(k) for k in ("num_tokens", "lower_limit", "upper_limit")}
    paths = _setting(kwargs, "rows", "MEDU1_REWARD_ROWS")
    key = (data_source, extra.get("split"), extra.get("index"), str(ground_truth))
    if not paths:
        raise Medu1RewardError(
            f"sample {key}: extra_info carries no num_tokens (budget) or limits; write rows with "
            "`medu1 data prepare --label-format verl`, or set MEDU1_REWARD_ROWS to the released files")
    table = _load_rows(paths)
    if key not in table:
        raise Medu1RewardError(
            f"sample {key}: no row with this data_source, split, index and ground truth in {paths}")
    rm = table[key]
    if rm is None:
        raise Medu1RewardError(f"sample {key}: several different rows in {paths} share this key")
    return {k: rm.get(k) for k in ("num_tokens", "lower_limit", "upper_limit")}


def build_request(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """The `/score` request for one verl sample (exposed for tests)."""
    extra = extra_info or {}
    fields = reward_fields(data_source, ground_truth, extra, kwargs)
    prompt = extra.get("prompt")
    req = {
        "data_source": data_source,
        "prompt": prompt if isinstance(prompt, str) else ASSISTANT_HEADER,
        "response": solution_str,
        "ground_truth": str(ground_truth),
        "num_tokens": int(-1 if fields["num_tokens"] is None else fields["num_tokens"]),
        "lower_limit": fields["lower_limit"],
        "upper_limit": fields["upper_limit"],
        "eos": "stripped",
    }
    if extra.get("response_length") is not None:
        req["valid_response_length"] = float(extra["response_length"])
    else:
        max_len = _setting(kwargs, "max_response_length", "MEDU1_MAX_RESPONSE_LENGTH")
        if max_len is not None:
            req["max_response_length"] = int(max_len)
    return req


def _result(row, req):
    if "error" in row:
        raise Medu1RewardError(row["error"].get("message", str(row["error"])))
    if req["num_tokens"] != -1 and row.get("length_source") == "word_count":
        raise Medu1RewardError(
            "the sample has a budget but the server counted words, not tokens: start `medu1 serve` "
            "with --tokenizer (the policy's tokenizer)")
    return {
        "score": float(row["reward"]),
        "acc": float(row["accuracy"]),
        "format": float(row["format"]),
        "answer": float(row["answer"]),
        "length": float(row["length"]),
        "format_valid": float(bool(row["format_valid"])),
        "fallback": 0.0,
    }


def _fallback(n, error, kwargs):
    reward = _config(kwargs)[3]
    if reward is None:
        raise error
    log.warning("medu1 reward unavailable, %d sample(s) get the fallback reward %s: %s", n, reward, error)
    return [dict(score=reward, acc=0.0, format=0.0, answer=0.0, length=0.0, format_valid=0.0, fallback=1.0)
            for _ in range(n)]


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's per-sample custom reward function: a dict whose `score` is the Med-U1 reward."""
    req = build_request(data_source, solution_str, ground_truth, extra_info, **kwargs)
    try:
        out = _post("/score", {"requests": [req]}, kwargs)
    except Medu1RewardUnavailable as e:
        return _fallback(1, e, kwargs)[0]
    return _result(out["results"][0], req)


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """`compute_score` as a coroutine (verl's reward loop awaits it): the blocking HTTP call runs in
    a worker thread so the event loop keeps scheduling other samples."""
    return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth, extra_info, **kwargs)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
    """verl's `BatchRewardManager` function: one `/score` request for the whole batch."""
    n = len(solution_strs)
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * n
    reqs = [build_request(data_sources[i], solution_strs[i], ground_truths[i], extra_infos[i], **kwargs)
            for i in range(n)]
    try:
        out = _post("/score", {"requests": reqs}, kwargs)
    except Medu1RewardUnavailable as e:
        return _fallback(n, e, kwargs)
    return [_result(row, req) for row, req in zip(out["results"], reqs)]
