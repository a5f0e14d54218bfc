"""Tests of the verl shim against a live `medu1 serve` (MEDU1_REWARD_URL), without a tokenizer.

Run by `cargo test -p medu1-cli --test verl_shim`, which starts the server; standard library only.
The frameworks' own code paths are driven by integrations/tests/test_frameworks.py.
"""

import asyncio
import concurrent.futures
import json
import logging
import os
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medu1_reward  # noqa: E402

KEYS = set(medu1_reward.KEYS)
NO_BUDGET = {"num_tokens": -1, "lower_limit": None, "upper_limit": None}


@unittest.skipUnless(os.environ.get("MEDU1_REWARD_URL"), "MEDU1_REWARD_URL not set")
class ShimTest(unittest.TestCase):
    def test_multiple_choice(self):
        good = medu1_reward.compute_score("MedIQ", "<think>ok</think><answer>C</answer>", "C", NO_BUDGET)
        self.assertEqual(set(good), KEYS)
        self.assertEqual(good["score"], 2.0)
        self.assertEqual(good["acc"], 1.0)
        self.assertEqual(good["fallback"], 0.0)
        wrong = medu1_reward.compute_score("MedXpertQA", "<think>ok</think><answer>B</answer>", "C", NO_BUDGET)
        self.assertEqual(wrong["score"], 0.0)
        self.assertEqual(wrong["acc"], 0.0)
        no_tags = medu1_reward.compute_score("MedIQ", "The answer is C", "C", NO_BUDGET)
        self.assertEqual(no_tags["score"], -3.0)
        self.assertEqual(no_tags["format_valid"], 0.0)

    def test_calculation_with_limits_from_extra_info(self):
        extra = {"index": 0, "split": "test", "num_tokens": -1, "lower_limit": "102.6", "upper_limit": "113.4"}
        r = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>110</answer>", "108.0", extra)
        self.assertEqual(set(r), KEYS)
        self.assertEqual(r["score"], 2.0)
        r = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>120</answer>", "108.0", extra)
        self.assertEqual(r["score"], 0.0)
        date = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>09/23/2014</answer>",
                                          "09/23/2014", NO_BUDGET)
        self.assertEqual(date["score"], 2.0)

    def test_a_row_without_reward_fields_is_an_error_not_a_lost_budget(self):
        with self.assertRaises(medu1_reward.Medu1RewardError) as ctx:
            medu1_reward.compute_score("MedIQ", "<think>t</think><answer>A</answer>", "A",
                                       {"index": 3, "split": "train"})
        self.assertIn("num_tokens", str(ctx.exception))

    def test_released_rows_are_looked_up_by_source_split_and_index(self):
        rows = [
            {"data_source": "MedCalc-Bench", "reward_model": {"ground_truth": "108.0", "lower_limit": "102.6",
             "upper_limit": "113.4", "num_tokens": -1, "style": "rule"}, "extra_info": {"index": 7, "split": "train"}},
            {"data_source": "MedIQ", "reward_model": {"ground_truth": "A", "lower_limit": None, "upper_limit": None,
             "num_tokens": 200, "style": "rule"}, "extra_info": {"index": 7, "split": "train"}},
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        try:
            kw = {"rows": f.name}
            r = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>110</answer>", "108.0",
                                           {"index": 7, "split": "train"}, **kw)
            self.assertEqual(r["score"], 2.0)
            r = medu1_reward.compute_score("MedIQ", "<think>t</think><answer>A</answer>", "A",
                                           {"index": 7, "split": "train", "response_length": 200}, **kw)
            self.assertEqual(r["score"], 3.0)
            with self.assertRaises(medu1_reward.Medu1RewardError) as ctx:
                medu1_reward.compute_score("MedIQ", "<answer>B</answer>", "B", {"index": 7, "split": "train"}, **kw)
            self.assertIn("no row", str(ctx.exception))
        finally:
            os.unlink(f.name)

    def test_free_text_same_keys(self):
        gt = "Gradenigo syndrome is otitis media with sixth nerve palsy and retro-orbital pain."
        r = medu1_reward.compute_score("medical-o1-reasoning-SFT", f"<think>t</think><answer>{gt}</answer>", gt,
                                       NO_BUDGET)
        self.assertEqual(set(r), KEYS)
        self.assertIn(r["score"], (0.0, 2.0))

    def test_budget_uses_given_length(self):
        extra = {"num_tokens": 200, "response_length": 200}
        r = medu1_reward.compute_score("MedIQ", "<think>t</think><answer>A</answer>", "A", extra)
        self.assertEqual(r["length"], 1.0)
        self.assertEqual(r["score"], 3.0)

    def test_a_budget_without_a_token_count_is_an_error(self):
        # This server has no --tokenizer: a word count is no token count.
        with self.assertRaises(medu1_reward.Medu1RewardError) as ctx:
            medu1_reward.compute_score("MedIQ", "<think>t</think><answer>A</answer>", "A", {"num_tokens": 1500},
                                       max_response_length=4096)
        self.assertIn("--tokenizer", str(ctx.exception))

    def test_rejected_sample_raises_with_the_field(self):
        with self.assertRaises(medu1_reward.Medu1RewardError) as ctx:
            medu1_reward.compute_score("NoSuchSet", "<think>t</think><answer>A</answer>", "A", NO_BUDGET,
                                       fallback_reward=-5.0)
        self.assertIn("data source", str(ctx.exception))
        self.assertNotIsInstance(ctx.exception, medu1_reward.Medu1RewardUnavailable)

    def test_batch_and_async_forms_equal_the_per_sample_form(self):
        sols = ["<think>a</think><answer>C</answer>", "<think>a</think><answer>D</answer>", "no tags"]
        extras = [dict(NO_BUDGET, index=i) for i in range(3)]
        one = [medu1_reward.compute_score("MedIQ", s, "C", e) for s, e in zip(sols, extras)]
        batch = medu1_reward.compute_score_batch(["MedIQ"] * 3, sols, ["C"] * 3, extras)
        self.assertEqual(batch, one)

        async def all_async():
            return await asyncio.gather(*[medu1_reward.compute_score_async("MedIQ", s, "C", e)
                                          for s, e in zip(sols, extras)])

        self.assertEqual(asyncio.run(all_async()), one)

    def test_server_down_raises_or_gives_the_logged_fallback(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        kw = {"url": f"http://127.0.0.1:{port}", "retries": 1}
        with self.assertRaises(medu1_reward.Medu1RewardUnavailable):
            medu1_reward.compute_score("MedIQ", "<answer>C</answer>", "C", NO_BUDGET, **kw)
        with self.assertLogs("medu1_reward", logging.WARNING) as logs:
            r = medu1_reward.compute_score_batch(["MedIQ"] * 2, ["<answer>C</answer>"] * 2, ["C"] * 2,
                                                 [NO_BUDGET] * 2, fallback_reward=-1.5, **kw)
        self.assertEqual([x["score"] for x in r], [-1.5, -1.5])
        self.assertEqual([x["fallback"] for x in r], [1.0, 1.0])
        self.assertEqual(set(r[0]), KEYS)
        self.assertIn("fallback reward -1.5", logs.output[0])

    def test_a_server_that_does_not_answer_times_out(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(8)  # accepts connections, never answers
            kw = {"url": f"http://127.0.0.1:{s.getsockname()[1]}", "retries": 0, "timeout": 0.3}
            with self.assertRaises(medu1_reward.Medu1RewardUnavailable) as ctx:
                medu1_reward.compute_score("MedIQ", "<answer>C</answer>", "C", NO_BUDGET, **kw)
            self.assertIn("timeout", str(ctx.exception).lower())
            with self.assertLogs("medu1_reward", logging.WARNING):
                r = medu1_reward.compute_score("MedIQ", "<answer>C</answer>", "C", NO_BUDGET,
                                               fallback_reward=0.0, **kw)
            self.assertEqual(r["fallback"], 1.0)

    def test_threads_share_nothing_but_the_server(self):
        def one(i):
            gt = "ABCD"[i % 4]
            return medu1_reward.compute_score("MedIQ", f"<think>{i}</think><answer>{gt}</answer>", gt,
                                              NO_BUDGET)["score"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            scores = list(pool.map(one, range(200)))
        self.assertEqual(scores, [2.0] * 200)


if __name__ == "__main__":
    unittest.main()
