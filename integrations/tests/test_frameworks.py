"""verl 0.9.1, OpenRLHF 0.11.2 and TRL drive medu1's rewards through their own code.

Run by `cargo test --release -p medu1-cli --test frameworks` with the venv that
scripts/integrations_venv.sh builds (MEDU1_FRAMEWORKS_PYTHON). Needs MEDU1_BIN (the medu1 binary)
and MEDU1_MODEL_GGUF (the embedded model, `medu1 setup`), whose tokenizer stands in for the policy's.

Inputs are rows written by `medu1 data prepare` from the project's fixtures (MCQ, MedCalc numeric,
date and week/day tuple, free text) with budgets none / exact / max, each answered correctly,
wrongly, without tags, and truncated at the response limit. Every reward a framework computes must
equal `medu1 score` on the reference's own input for that sample (prompt + response decoded with
special tokens, L = generated tokens including the EOS) within 1e-6.
"""

import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import types
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(ROOT, "crates", "medu1-data", "tests", "fixtures")
SHIM = os.path.join(ROOT, "integrations", "verl", "medu1_reward.py")
sys.path.insert(0, os.path.join(ROOT, "integrations", "trl"))

MEDU1 = os.environ.get("MEDU1_BIN", os.path.join(ROOT, "target", "release", "medu1"))
GGUF = os.environ.get("MEDU1_MODEL_GGUF", os.path.expanduser(
    "~/.cache/medu1/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
EOS = "<|im_end|>"
TOL = 1e-6

S = types.SimpleNamespace()  # module state, built once


def run(*args, **kw):
    return subprocess.run([MEDU1, *args], check=True, capture_output=True, text=True, **kw)


def start_server(*extra):
    p = subprocess.Popen([MEDU1, "serve", "--addr", "127.0.0.1:0", "--tokenizer", S.tokenizer_json, *extra],
                         stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    url = next(w for w in line.split() if w.startswith("http://"))
    return p, url


def date_fixture(path):
    """MedCalc-Bench's CSV layout with a date answer (the fixture has numeric and week/day rows)."""
    with open(os.path.join(FIXTURES, "medcalc.csv"), newline="") as f:
        rows = list(csv.reader(f))
    row = list(rows[1])
    head = rows[0]
    row[head.index("Row Number")] = "3"
    row[head.index("Calculator ID")] = "13"
    row[head.index("Calculator Name")] = "Estimated Due Date"
    row[head.index("Output Type")] = "date"
    row[head.index("Question")] = "What is the due date?"
    row[head.index("Relevant Entities")] = "{'last_menstrual_date': '01/01/2020', 'cycle_length': 28}"
    for k in ("Ground Truth Answer", "Lower Limit", "Upper Limit"):
        row[head.index(k)] = "10/07/2020"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([head, row])


def setUpModule():
    from transformers import AutoTokenizer

    S.tmp = tempfile.mkdtemp(prefix="medu1-frameworks-")
    tok = AutoTokenizer.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF))
    # SmolLM2-Instruct stops on <|im_end|> (its generation config); the GGUF names another EOS.
    tok.eos_token, tok.pad_token = EOS, "<|endoftext|>"
    tok.save_pretrained(os.path.join(S.tmp, "tok"))
    S.tok = tok
    S.tokenizer_json = os.path.join(S.tmp, "tok", "tokenizer.json")

    date_csv = os.path.join(S.tmp, "medcalc_date.csv")
    date_fixture(date_csv)
    inputs = [os.path.join(FIXTURES, f) for f in ("medcalc.csv", "mediq.jsonl", "o1sft.json")] + [date_csv]
    S.verl_files, S.openrlhf_files = [], []
    for budget in ("none", "exact", "max"):
        out = os.path.join(S.tmp, f"verl_{budget}.parquet")
        run("data", "prepare", "--budget", budget, "-o", out, *inputs)
        S.verl_files.append(out)
        out = os.path.join(S.tmp, f"openrlhf_{budget}.jsonl")
        run("data", "prepare", "--budget", budget, "--label-format", "openrlhf", "-o", out, *inputs)
        S.openrlhf_files.append(out)
    S.server, S.url = start_server()
    # Also in the environment, where a shim that takes no `url` kwarg looks.
    os.environ["MEDU1_REWARD_URL"] = S.url


def tearDownModule():
    S.server.terminate()
    S.server.wait()


def wrong_answer(gt, data_source):
    if data_source == "MedCalc-Bench":
        if gt.startswith("("):
            return "('1 weeks', '1 days')"
        return "01/01/1900" if "/" in gt else "99999"
    if len(gt) == 1:
        return "A" if gt != "A" else "B"
    return "Tuberculosis of the spine with cord compression."


def responses(gt, data_source):
    """(kind, text) pairs; truncated ones are cut to the response limit later."""
    return [
        ("correct", f"<think>Let me think. The key finding points one way.</think><answer>{gt}</answer>"),
        ("wrong", f"<think>Hmm, wait.</think><answer>{wrong_answer(gt, data_source)}</answer>"),
        ("malformed", f"The answer is {gt}"),
        ("truncated", "<think>" + " let me think again" * 600),
    ]


def build_samples(rows, prompt_ids_of):
    """Responses as token ids, like a rollout's: EOS-terminated, or cut at the limit M."""
    tok = S.tok
    eos_id = tok.convert_tokens_to_ids(EOS)
    samples = []
    for row in rows:
        rm = row["reward_model"]
        for kind, text in responses(rm["ground_truth"], row["data_source"]):
            ids = tok.encode(text, add_special_tokens=False)
            samples.append({"row": row, "kind": kind, "ids": ids if kind == "truncated" else ids + [eos_id],
                            "prompt_ids": prompt_ids_of(row)})
    limit = max(len(s["ids"]) for s in samples if s["kind"] != "truncated") + 3
    for s in samples:
        if s["kind"] == "truncated":
            s["ids"] = s["ids"][:limit]
        # The server counts the decoded text again; the test's responses must tokenize back to
        # themselves (a model's own non-canonical tokenizations are the one thing it cannot see).
        text = tok.decode(s["ids"], skip_special_tokens=True)
        again = tok.encode(text, add_special_tokens=False)
        assert again == [i for i in s["ids"] if i != eos_id], (s["kind"], text)
    return samples, limit


def medu1_score(samples):
    """`medu1 score` on the reference's input for each sample."""
    tok = S.tok
    path = os.path.join(S.tmp, f"score_{time.monotonic_ns()}.jsonl")
    with open(path, "w") as f:
        for s in samples:
            rm = s["row"]["reward_model"]
            f.write(json.dumps({
                "data_source": s["row"]["data_source"],
                "solution_str": tok.decode(s["prompt_ids"] + s["ids"], skip_special_tokens=False),
                "ground_truth": rm["ground_truth"],
                "lower_limit": rm["lower_limit"],
                "upper_limit": rm["upper_limit"],
                "num_tokens": rm["num_tokens"],
                "valid_response_length": float(len(s["ids"])),
            }) + "\n")
    out = run("score", path, "--strict").stdout
    return [json.loads(line)["reward"] for line in out.splitlines()]


def assert_rewards(test, got, samples, label):
    want = medu1_score(samples)
    test.assertEqual(len(got), len(want))
    bad = [(s["row"]["data_source"], s["row"]["reward_model"]["num_tokens"], s["kind"], g, w)
           for s, g, w in zip(samples, got, want) if g is None or abs(g - w) > TOL]
    test.assertEqual(bad, [], f"{label}: {len(bad)} of {len(want)} rewards differ from `medu1 score`")
    kinds = {(s["row"]["extra_info"]["output_type"], s["kind"], s["row"]["reward_model"]["num_tokens"] == -1)
             for s in samples}
    # Every task kind x response kind, with and without a budget, was scored.
    test.assertEqual(len(kinds), 5 * 4 * 2, sorted(kinds))
    print(f"{label}: {len(want)} rewards equal `medu1 score` (distinct values {len(set(want))})", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- verl
class VerlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from omegaconf import OmegaConf
        from verl import DataProto
        from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

        tok = S.tok
        cfg = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 8192, "truncation": "error",
                                "filter_overlong_prompts": False, "cache_dir": os.path.join(S.tmp, "verl")})
        ds = RLHFDataset(data_files=S.verl_files, tokenizer=tok, config=cfg)
        items = [ds[i] for i in range(len(ds))]

        # verl's agent loop renders raw_prompt with the tokenizer's chat template (the reference's
        # double template: the stored prompt is already templated).
        def prompt_ids(row):
            return tok.apply_chat_template(list(row["raw_prompt"]), add_generation_prompt=True, tokenize=True,
                                           return_dict=False)

        samples, limit = build_samples(items, prompt_ids)
        n = len(samples)
        width = max(len(s["prompt_ids"]) for s in samples)
        pad = tok.pad_token_id
        prompts = torch.full((n, width), pad)
        resp = torch.full((n, limit), pad)
        mask = torch.zeros((n, width + limit), dtype=torch.long)
        for i, s in enumerate(samples):
            p = s["prompt_ids"]
            prompts[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):width] = 1
            resp[i, :len(s["ids"])] = torch.tensor(s["ids"])
            mask[i, width:width + len(s["ids"])] = 1
        batch = collate_fn([s["row"] for s in samples])
        data = DataProto.from_single_dict(batch)
        data.batch["prompts"] = prompts
        data.batch["responses"] = resp
        data.batch["input_ids"] = torch.cat([prompts, resp], dim=1)
        data.batch["attention_mask"] = mask
        cls.data, cls.samples, cls.limit = data, samples, limit

    def reward_fn(self, name, **extra):
        """The shim, loaded the way verl's trainer loads a custom reward function."""
        from omegaconf import OmegaConf
        from verl.trainer.ppo.reward import get_custom_reward_fn

        config = OmegaConf.create({"reward": {"custom_reward_function": {
            "path": SHIM, "name": name,
            "reward_kwargs": {"url": S.url, "max_response_length": self.limit, **extra}}}})
        return get_custom_reward_fn(config)

    def test_legacy_naive_reward_manager(self):
        from verl.workers.reward_manager import NaiveRewardManager

        rm = NaiveRewardManager(tokenizer=S.tok, num_examine=0, compute_score=self.reward_fn("compute_score"))
        t = time.perf_counter()
        out = rm(self.data, return_dict=True)
        dt = time.perf_counter() - t
        got = out["reward_tensor"].sum(-1).tolist()
        assert_rewards(self, got, self.samples, "verl NaiveRewardManager (per sample)")
        print(f"verl per-sample: {len(got)} samples in {dt * 1000:.1f} ms", file=sys.stderr)
        self.assertEqual(out["reward_extra_info"]["fallback"], [0.0] * len(got))

    def test_batch_reward_manager(self):
        from verl.workers.reward_manager import BatchRewardManager

        rm = BatchRewardManager(tokenizer=S.tok, num_examine=0, compute_score=self.reward_fn("compute_score_batch"))
        t = time.perf_counter()
        out = rm(self.data, return_dict=True)
        dt = time.perf_counter() - t
        assert_rewards(self, out["reward_tensor"].sum(-1).tolist(), self.samples, "verl BatchRewardManager")
        print(f"verl batch: {len(self.samples)} samples in {dt * 1000:.1f} ms", file=sys.stderr)

    def test_reward_loop_naive_manager_sync_and_async(self):
        from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

        for name in ("compute_score", "compute_score_async"):
            async def main():
                rm = NaiveRewardManager(config=None, tokenizer=S.tok, compute_score=self.reward_fn(name))
                outs = await asyncio.gather(*[rm.run_single(self.data[i:i + 1]) for i in range(len(self.data))])
                return [o["reward_score"] for o in outs]

            assert_rewards(self, asyncio.run(main()), self.samples, f"verl reward loop ({name})")

    def test_released_rows_through_the_row_lookup(self):
        """Rows as the released files lay them out: extra_info holds index and split only."""
        from verl.workers.reward_manager import NaiveRewardManager

        data = self.data[:len(self.data)]
        rows_file = os.path.join(S.tmp, "released.jsonl")
        seen = set()
        with open(rows_file, "w") as f:
            for i in range(len(data)):
                ei = dict(data.non_tensor_batch["extra_info"][i])
                key = (data.non_tensor_batch["data_source"][i], ei["split"], ei["index"], ei["num_tokens"])
                if key in seen:
                    continue
                seen.add(key)
                f.write(json.dumps({"data_source": key[0], "reward_model": dict(data.non_tensor_batch["reward_model"][i]),
                                    "extra_info": {"index": ei["index"], "split": ei["split"]}}) + "\n")
        # One budget file at a time: the three budget variants share (source, split, index).
        per_budget = [i for i, s in enumerate(self.samples) if s["row"]["reward_model"]["num_tokens"] > 0]
        sub = data[per_budget]
        for i in range(len(sub)):
            ei = sub.non_tensor_batch["extra_info"][i]
            sub.non_tensor_batch["extra_info"][i] = {"index": ei["index"], "split": ei["split"]}
        with open(rows_file) as f:
            exact = [json.loads(line) for line in f if json.loads(line)["reward_model"]["num_tokens"] > 0]
        with open(rows_file, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in exact))
        rm = NaiveRewardManager(tokenizer=S.tok, num_examine=0,
                                compute_score=self.reward_fn("compute_score", rows=rows_file))
        got = rm(sub, return_dict=True)["reward_tensor"].sum(-1).tolist()
        want = medu1_score([self.samples[i] for i in per_budget])
        self.assertEqual([round(g - w, 6) for g, w in zip(got, want)], [0.0] * len(want))

    def test_server_down_and_4xx(self):
        from verl.workers.reward_manager import BatchRewardManager, NaiveRewardManager

        import medu1_reward  # noqa: F401  (loaded by verl as a file; imported here for the error type)
        sub = self.data[:4]
        down = self.reward_fn("compute_score_batch", url="http://127.0.0.1:9", retries=0)
        with self.assertRaisesRegex(Exception, "unavailable"):
            BatchRewardManager(tokenizer=S.tok, num_examine=0, compute_score=down)(sub)
        fallback = self.reward_fn("compute_score", url="http://127.0.0.1:9", retries=0, fallback_reward=-2.0)
        with self.assertLogs("medu1_reward", "WARNING"):
            out = NaiveRewardManager(tokenizer=S.tok, num_examine=0, compute_score=fallback)(sub, return_dict=True)
        self.assertEqual(out["reward_tensor"].sum(-1).tolist(), [-2.0] * 4)
        self.assertEqual(out["reward_extra_info"]["fallback"], [1.0] * 4)
        bad = self.data[:1]
        bad.non_tensor_batch["data_source"][0] = "NoSuchSet"
        with self.assertRaisesRegex(Exception, "data source"):
            NaiveRewardManager(tokenizer=S.tok, num_examine=0, compute_score=self.reward_fn("compute_score"))(bad)


sys.path.insert(0, os.path.dirname(SHIM))


# ------------------------------------------------------------------------------------------ OpenRLHF
class FakeEngine:
    """vLLM's place in OpenRLHF's agent executor: returns the prepared response ids."""

    def __init__(self, by_prompt):
        self.by_prompt = by_prompt

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        ids, truncated = self.by_prompt[tuple(prompt_token_ids)].pop(0)
        out = types.SimpleNamespace(token_ids=ids, finish_reason="length" if truncated else "stop",
                                    text=S.tok.decode(ids, skip_special_tokens=True), logprobs=None)
        return types.SimpleNamespace(outputs=[out])


class OpenRlhfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rows = []
        for path in S.openrlhf_files:
            with open(path) as f:
                for line in f:
                    r = json.loads(line)
                    label = json.loads(r["label"])
                    rows.append({"prompt": r["prompt"], "label": r["label"], "data_source": label["data_source"],
                                 "reward_model": label, "extra_info": {"output_type": label["output_type"]}})
        cls.samples, cls.limit = build_samples(
            rows, lambda row: S.tok(text=row["prompt"], add_special_tokens=False)["input_ids"])

    def execute(self, url, samples):
        from openrlhf.utils.agent import SingleTurnAgentExecutor

        by_prompt = {}
        for s in samples:
            by_prompt.setdefault(tuple(s["prompt_ids"]), []).append((s["ids"], s["kind"] == "truncated"))
        engine = FakeEngine(by_prompt)
        executor = SingleTurnAgentExecutor(url + "/reward")
        params = types.SimpleNamespace(max_tokens=self.limit, logprobs=None)

        async def main():
            outs = []
            for s in samples:  # in order: the fake engine hands out responses per prompt in order
                outs.append(await executor.execute(s["row"]["prompt"], s["row"]["label"], params,
                                                   len(s["prompt_ids"]) + self.limit, S.tok, engine))
            return outs

        return asyncio.run(main())

    def test_agent_executor_rewards_equal_medu1_score(self):
        t = time.perf_counter()
        outs = self.execute(S.url, self.samples)
        dt = time.perf_counter() - t
        self.assertEqual([o["truncated"] for o in outs], [s["kind"] == "truncated" for s in self.samples])
        # A reward server answers a list per request (as OpenRLHF's own serve_rm does); the executor
        # sends one query per request and stores that list.
        got = [o["reward"][0] for o in outs]
        assert_rewards(self, got, self.samples, "OpenRLHF SingleTurnAgentExecutor")
        print(f"OpenRLHF: {len(outs)} samples (one request each) in {dt * 1000:.1f} ms", file=sys.stderr)

    def test_bad_labels_get_the_error_reward_and_a_metric(self):
        import urllib.request

        s = dict(self.samples[0])
        label = json.loads(s["row"]["label"])
        label["num_token"] = label.pop("num_tokens")
        s["row"] = dict(s["row"], label=json.dumps(label))
        # OpenRLHF's own behaviour on a 4xx: five tries, then reward None and a log line only.
        strict = self.execute(S.url, [s])
        self.assertIsNone(strict[0]["reward"])
        server, url = start_server("--error-reward", "-3")
        try:
            out = self.execute(url, [s])
            self.assertEqual(out[0]["reward"], [-3.0])
            self.assertEqual(out[0]["extra_logs"]["scoring_error"], [1.0])
            metrics = urllib.request.urlopen(url + "/metrics").read().decode()
            self.assertIn('medu1_errors_total{route="reward",kind="label"} 1', metrics)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    unittest.main()
