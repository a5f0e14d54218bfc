"""TRL's GRPOTrainer calls medu1's reward function (server and cli backends) through its own reward
step on the embedded model (and, with MEDU1_TRL_TRAIN_STEP=1, during a real training step); every
reward equals `medu1 score` on the reference's input.

Run by `cargo test --release -p medu1-cli --test frameworks` (MEDU1_BIN, MEDU1_MODEL_GGUF).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import grpo_medu1  # noqa: E402
from medu1_trl import Medu1Reward  # noqa: E402

MEDU1 = os.environ.get("MEDU1_BIN", "medu1")
GGUF = os.environ.get("MEDU1_MODEL_GGUF", grpo_medu1.DEFAULT_GGUF)
FIXTURES = os.path.join(HERE, "..", "..", "crates", "medu1-data", "tests", "fixtures")


class Recording(Medu1Reward):
    """Keeps what TRL passed and what the reward answered."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.__name__ = f"medu1_{kw['backend']}"
        self.calls = []

    def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        rewards = super().__call__(prompts, completions, completion_ids=completion_ids, **kwargs)
        self.calls.append((prompts, completion_ids, kwargs["data_source"], kwargs["reward_model"], rewards))
        return rewards


class TrlTest(unittest.TestCase):
    def test_grpo_trainer_rewards_equal_medu1_score(self):
        tmp = tempfile.mkdtemp(prefix="medu1-trl-")
        rows = os.path.join(tmp, "rows.parquet")
        subprocess.run([MEDU1, "data", "prepare", "--budget", "exact", "-o", rows,
                        os.path.join(FIXTURES, "mediq.jsonl"), os.path.join(FIXTURES, "medcalc.csv")],
                       check=True, capture_output=True)
        server = subprocess.Popen([MEDU1, "serve", "--addr", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
        try:
            url = next(w for w in server.stderr.readline().split() if w.startswith("http://"))
            # Both backends as two reward functions of one trainer: TRL calls each on the same
            # completions in the same step.
            funcs = [Recording(backend=b, url=url, medu1_bin=MEDU1) for b in ("server", "cli")]
            trainer = grpo_medu1.build_trainer(GGUF, rows, os.path.join(tmp, "out"), funcs, steps=1,
                                               max_completion_length=16, generations=4)
            # A training step costs 5-7 minutes on the shared 2-core test machine (measured under
            # load), too much for CI; MEDU1_TRL_TRAIN_STEP=1 runs one. The prepared completions
            # below go through the same GRPOTrainer reward call either way.
            if os.environ.get("MEDU1_TRL_TRAIN_STEP") == "1":
                trainer.train()
                for f in funcs:
                    self.assertTrue(f.calls, f"TRL never called {f.__name__}")
                    self.check_against_medu1_score(trainer.processing_class, f.calls, tmp, f.__name__)
            else:
                print("skipping the GRPO training step (MEDU1_TRL_TRAIN_STEP=1 runs it)", file=sys.stderr)
            # A 135M model's 16 tokens rarely hold a tagged answer; TRL's own reward step scores
            # prepared completions (correct, wrong, untagged, truncated).
            for f in funcs:
                f.calls = []
            self.crafted_completions(trainer, funcs, rows, tmp)
        finally:
            server.terminate()
            server.wait()

    def crafted_completions(self, trainer, funcs, rows, tmp):
        import torch

        tok = trainer.processing_class
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        dataset = grpo_medu1.load_rows(rows)
        inputs, prompts, completions, ids_list = [], [], [], []
        for row in dataset:
            gt = row["reward_model"]["ground_truth"]
            texts = [(f"<think>Let me think.</think><answer>{gt}</answer>", True),
                     ("<think>Hmm.</think><answer>99999</answer>", True),
                     (f"The answer is {gt}", True),
                     ("<think>" + " wait" * 40, False)]
            for text, stopped in texts:
                ids = tok.encode(text, add_special_tokens=False)
                ids = ids + [eos] if stopped else ids[:30]
                inputs.append(dict(row))
                prompts.append(row["prompt"])
                completions.append(tok.decode(ids, skip_special_tokens=True))
                ids_list.append(ids)
        rewards = trainer._calculate_rewards(inputs, prompts, completions, ids_list)
        self.assertEqual(tuple(rewards.shape), (len(inputs), len(funcs)))
        for j, f in enumerate(funcs):
            self.assertEqual(len(f.calls), 1)
            self.check_against_medu1_score(tok, f.calls, tmp, f.__name__ + " (prepared completions)")
            self.assertTrue(torch.allclose(rewards[:, j].double(), torch.tensor(f.calls[0][4]).double(), atol=1e-6))
        self.assertGreater(len(set(funcs[0].calls[0][4])), 3)

    def check_against_medu1_score(self, tok, calls, tmp, name):
        lines, got = [], []
        for prompts, completion_ids, sources, rms, rewards in calls:
            for p, ids, src, rm, r in zip(prompts, completion_ids, sources, rms, rewards):
                lines.append({"data_source": src,
                              "solution_str": p + tok.decode(ids, skip_special_tokens=False),
                              "ground_truth": rm["ground_truth"], "lower_limit": rm["lower_limit"],
                              "upper_limit": rm["upper_limit"], "num_tokens": rm["num_tokens"],
                              "valid_response_length": float(len(ids))})
                got.append(r)
        path = os.path.join(tmp, "want.jsonl")
        with open(path, "w") as f:
            f.write("".join(json.dumps(x) + "\n" for x in lines))
        out = subprocess.run([MEDU1, "score", path, "--strict"], check=True, capture_output=True, text=True)
        want = [json.loads(line)["reward"] for line in out.stdout.splitlines()]
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertAlmostEqual(g, w, delta=1e-6)
        print(f"TRL GRPOTrainer ({name}): {len(got)} rewards equal `medu1 score`", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
