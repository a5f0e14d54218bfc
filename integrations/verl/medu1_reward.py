"""Med-U1 rewards for verl, computed by a running `medu1 serve`.

Use it as verl's custom reward function:

    custom_reward_function.path=integrations/verl/medu1_reward.py
    custom_reward_function.name=compute_score

and start the server once per node (or behind a load balancer):

    medu1 serve --addr 127.0.0.1:8000 --tokenizer /path/to/policy/model

Environment:
    MEDU1_REWARD_URL      server base URL (default http://127.0.0.1:8000)
    MEDU1_REWARD_TIMEOUT  seconds per request (default 30)
    MEDU1_REWARD_RETRIES  retries on connection errors and 5xx (default 3)

verl passes the decoded *response* only (special tokens skipped), while Med-U1's scorer expects
prompt + response and splits at the assistant header. The shim therefore sends the response after
the Qwen assistant header (or after `extra_info["prompt"]` when the dataset stores the prompt), and
lets the server count the response tokens (+1 for the end-of-sequence token) unless
`extra_info["response_length"]` is given. The ground truth, limits and budget come from the verl
row's `reward_model` fields, which verl hands over as `ground_truth` and in `extra_info`.

Standard library only; one keep-alive connection per thread. Every data source returns the same
keys: score, acc, format, answer, length, format_valid.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse

ASSISTANT_HEADER = "<|im_start|>assistant\n"
_KEYS = ("score", "acc", "format", "answer", "length", "format_valid")

_local = threading.local()


class Medu1RewardError(RuntimeError):
    """The server rejected a sample (its message names the field)."""


def _config():
    url = urllib.parse.urlsplit(os.environ.get("MEDU1_REWARD_URL", "http://127.0.0.1:8000"))
    timeout = float(os.environ.get("MEDU1_REWARD_TIMEOUT", "30"))
    retries = int(os.environ.get("MEDU1_REWARD_RETRIES", "3"))
    return url, timeout, retries


def _connection(url, timeout):
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "netloc", None) != url.netloc:
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=timeout)
        _local.conn, _local.netloc = conn, url.netloc
    return conn


def _post(path, payload):
    url, timeout, retries = _config()
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
                last = Medu1RewardError(f"server error {resp.status}: {data[:500]!r}")
            elif resp.status >= 400:
                raise Medu1RewardError(f"medu1 rejected the request ({resp.status}): {data.decode('utf-8', 'replace')}")
            else:
                return json.loads(data)
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            last = e
            conn.close()
            _local.conn = None
        time.sleep(min(2.0, 0.1 * 2 ** attempt))
    raise Medu1RewardError(f"medu1 reward server unreachable after {retries + 1} tries: {last}")


def build_request(data_source, solution_str, ground_truth, extra_info=None):
    """The `/score` request for one verl sample (exposed for tests)."""
    extra = extra_info or {}
    rm = extra.get("reward_model") or {}
    prompt = extra.get("prompt")
    if not isinstance(prompt, str):
        prompt = ASSISTANT_HEADER
    req = {
        "data_source": data_source,
        "prompt": prompt,
        "response": solution_str,
        "ground_truth": str(ground_truth),
        "num_tokens": int(extra.get("num_tokens", rm.get("num_tokens", -1))),
        "lower_limit": extra.get("lower_limit", rm.get("lower_limit")),
        "upper_limit": extra.get("upper_limit", rm.get("upper_limit")),
    }
    if extra.get("response_length") is not None:
        req["valid_response_length"] = float(extra["response_length"])
    return req


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's custom reward function: a dict whose `score` is the Med-U1 reward."""
    req = build_request(data_source, solution_str, ground_truth, extra_info)
    out = _post("/score", {"requests": [req]})
    row = out["results"][0]
    if "error" in row:
        raise Medu1RewardError(row["error"].get("message", str(row["error"])))
    return {
        "score": float(row["reward"]),
        "acc": float(row["accuracy"]),
        "format": float(row["format"]),
        "answer": float(row["answer"]),
        "length": float(row["length"]),
        "format_valid": float(bool(row["format_valid"])),
    }
