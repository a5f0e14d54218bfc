"""Med-U1 rewards for TRL's `GRPOTrainer(reward_funcs=...)`.

    from medu1_trl import Medu1Reward
    trainer = GRPOTrainer(model=..., reward_funcs=[Medu1Reward()], train_dataset=dataset, ...)

The dataset is what `medu1 data prepare --label-format verl` writes (parquet or JSONL; keep the
`data_source`, `reward_model` and `extra_info` columns, TRL hands every column but `prompt` to the
reward function as a list). TRL passes the completions decoded without special tokens and the
completion token ids up to and including the end-of-sequence token (all of them when truncated),
so the response length L is exact: `len(completion_ids[i])`, as the reference counts it.

Backends:
* `server` (default): a running `medu1 serve` (`url`, else MEDU1_REWARD_URL); one `/score`
  request per reward call, with the verl shim's retries, timeout and optional fallback reward.
* `cli`: `medu1 score` on a temporary JSONL file per call (no server; slower to start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "verl"))
import medu1_reward  # noqa: E402

ASSISTANT_HEADER = medu1_reward.ASSISTANT_HEADER


def _text(completion):
    # Conversational datasets give [{"role": "assistant", "content": ...}].
    return completion if isinstance(completion, str) else completion[-1]["content"]


class Medu1Reward:
    """A TRL reward function whose rewards are medu1's Med-U1 rewards."""

    def __init__(self, backend="server", url=None, medu1_bin="medu1", timeout=None, retries=None,
                 fallback_reward=None):
        if backend not in ("server", "cli"):
            raise ValueError(f"backend must be 'server' or 'cli', not {backend!r}")
        self.__name__ = "medu1"  # TRL logs rewards under the function's name
        self.backend = backend
        self.medu1_bin = medu1_bin
        self.kwargs = {k: v for k, v in dict(url=url, timeout=timeout, retries=retries,
                                             fallback_reward=fallback_reward).items() if v is not None}

    def requests(self, prompts, completions, completion_ids, data_source, reward_model):
        reqs = []
        for i, completion in enumerate(completions):
            rm = reward_model[i]
            req = {
                "data_source": data_source[i],
                "prompt": ASSISTANT_HEADER,
                "response": _text(completion),
                "ground_truth": str(rm["ground_truth"]),
                "num_tokens": int(rm["num_tokens"]),
                "lower_limit": rm.get("lower_limit"),
                "upper_limit": rm.get("upper_limit"),
            }
            if completion_ids is not None:
                req["valid_response_length"] = float(len(completion_ids[i]))
            elif req["num_tokens"] != -1:
                raise medu1_reward.Medu1RewardError(
                    "TRL passed no completion_ids: the length term needs the response's token count")
            reqs.append(req)
        return reqs

    def __call__(self, prompts, completions, completion_ids=None, data_source=None, reward_model=None, **kwargs):
        if data_source is None or reward_model is None:
            raise medu1_reward.Medu1RewardError(
                "the dataset needs `data_source` and `reward_model` columns (medu1 data prepare writes them)")
        reqs = self.requests(prompts, completions, completion_ids, data_source, reward_model)
        if self.backend == "cli":
            return self._cli(reqs)
        try:
            out = medu1_reward._post("/score", {"requests": reqs}, self.kwargs)
        except medu1_reward.Medu1RewardUnavailable as e:
            return [r["score"] for r in medu1_reward._fallback(len(reqs), e, self.kwargs)]
        results = []
        for row in out["results"]:
            if "error" in row:
                raise medu1_reward.Medu1RewardError(row["error"].get("message", str(row["error"])))
            results.append(float(row["reward"]))
        return results

    def _cli(self, reqs):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "in.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in reqs))
            out = subprocess.run([self.medu1_bin, "score", path, "--strict"], capture_output=True, text=True)
            if out.returncode != 0:
                raise medu1_reward.Medu1RewardError(f"medu1 score failed: {out.stderr.strip()}")
            return [float(json.loads(line)["reward"]) for line in out.stdout.splitlines()]
