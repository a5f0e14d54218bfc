"""Tests of the verl shim against a live `medu1 serve` (MEDU1_REWARD_URL).

Run by `cargo test -p medu1-cli --test verl_shim`, which starts the server; standard library only.
"""

import concurrent.futures
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medu1_reward  # noqa: E402

KEYS = {"score", "acc", "format", "answer", "length", "format_valid"}


@unittest.skipUnless(os.environ.get("MEDU1_REWARD_URL"), "MEDU1_REWARD_URL not set")
class ShimTest(unittest.TestCase):
    def test_multiple_choice(self):
        good = medu1_reward.compute_score("MedIQ", "<think>ok</think><answer>C</answer>", "C")
        self.assertEqual(set(good), KEYS)
        self.assertEqual(good["score"], 2.0)
        self.assertEqual(good["acc"], 1.0)
        wrong = medu1_reward.compute_score("MedXpertQA", "<think>ok</think><answer>B</answer>", "C")
        self.assertEqual(wrong["score"], 0.0)
        self.assertEqual(wrong["acc"], 0.0)
        no_tags = medu1_reward.compute_score("MedIQ", "The answer is C", "C")
        self.assertEqual(no_tags["score"], -3.0)
        self.assertEqual(no_tags["format_valid"], 0.0)

    def test_calculation_with_limits_from_extra_info(self):
        extra = {"reward_model": {"lower_limit": "102.6", "upper_limit": "113.4", "num_tokens": -1}}
        r = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>110</answer>", "108.0", extra)
        self.assertEqual(set(r), KEYS)
        self.assertEqual(r["score"], 2.0)
        r = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>120</answer>", "108.0", extra)
        self.assertEqual(r["score"], 0.0)
        date = medu1_reward.compute_score("MedCalc-Bench", "<think>t</think><answer>09/23/2014</answer>", "09/23/2014")
        self.assertEqual(date["score"], 2.0)

    def test_free_text_same_keys(self):
        gt = "Gradenigo syndrome is otitis media with sixth nerve palsy and retro-orbital pain."
        r = medu1_reward.compute_score("medical-o1-reasoning-SFT", f"<think>t</think><answer>{gt}</answer>", gt)
        self.assertEqual(set(r), KEYS)
        self.assertIn(r["score"], (0.0, 2.0))

    def test_budget_uses_given_length(self):
        extra = {"num_tokens": 200, "response_length": 200}
        r = medu1_reward.compute_score("MedIQ", "<think>t</think><answer>A</answer>", "A", extra)
        self.assertEqual(r["length"], 1.0)
        self.assertEqual(r["score"], 3.0)

    def test_budget_counts_tokens_on_the_server(self):
        r = medu1_reward.compute_score("MedIQ", "<think>t</think><answer>A</answer>", "A", {"num_tokens": 1500})
        self.assertGreater(r["length"], 0.0)
        self.assertLess(r["length"], 1.0)

    def test_rejected_sample_raises_with_the_field(self):
        with self.assertRaises(medu1_reward.Medu1RewardError) as ctx:
            medu1_reward.compute_score("NoSuchSet", "<think>t</think><answer>A</answer>", "A")
        self.assertIn("data source", str(ctx.exception))

    def test_threads_share_nothing_but_the_server(self):
        def one(i):
            gt = "ABCD"[i % 4]
            return medu1_reward.compute_score("MedIQ", f"<think>{i}</think><answer>{gt}</answer>", gt)["score"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            scores = list(pool.map(one, range(200)))
        self.assertEqual(scores, [2.0] * 200)


if __name__ == "__main__":
    unittest.main()
