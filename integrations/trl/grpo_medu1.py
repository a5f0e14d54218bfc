"""TRL's GRPOTrainer with medu1's rewards, on the embedded model, on CPU: a runnable example.

    medu1 data prepare data/mediq.jsonl -o /tmp/rows.parquet          # any medu1 input
    medu1 serve --addr 127.0.0.1:8000 --tokenizer default &
    python integrations/trl/grpo_medu1.py --data /tmp/rows.parquet --steps 2

`--backend cli` scores with `medu1 score` instead of a server. For a real run, pass your policy
(`--model Qwen/Qwen2.5-7B-Instruct`) and the reference's hyperparameters (README, "TRL").
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medu1_trl import Medu1Reward  # noqa: E402

DEFAULT_GGUF = os.path.expanduser("~/.cache/medu1/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")


def load_model(model, out_dir):
    """A transformers model and tokenizer; a GGUF file is dequantized into a plain checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not model.endswith(".gguf"):
        return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), AutoTokenizer.from_pretrained(model)
    folder, name = os.path.split(model)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    m = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers marks a dequantized GGUF model as quantized, which its Trainer will not train;
    # TRL also reloads the policy from its path, so write a plain checkpoint and use that.
    m.is_quantized = False
    m.hf_quantizer = None
    if hasattr(m.config, "quantization_config"):
        del m.config.quantization_config
    # SmolLM2-Instruct ends a turn with <|im_end|> (its generation config); the GGUF names another.
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    m.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    plain = os.path.join(out_dir, "hf")
    m.save_pretrained(plain)
    tok.save_pretrained(plain)
    return AutoModelForCausalLM.from_pretrained(plain, dtype=torch.float32), tok


def load_rows(path):
    """medu1's verl rows as a TRL dataset: the stored prompt is already chat-templated, so it goes
    in as plain text (TRL would template it again); the reward columns stay."""
    from datasets import Dataset, load_dataset

    kind = "parquet" if path.endswith(".parquet") else "json"
    ds = load_dataset(kind, data_files=path, split="train")
    return Dataset.from_list([{"prompt": r["prompt"][0]["content"], "data_source": r["data_source"],
                               "reward_model": r["reward_model"], "extra_info": r["extra_info"]} for r in ds])


def build_trainer(model, data, out_dir, reward, steps=2, max_completion_length=32, generations=4, seed=0):
    from trl import GRPOConfig, GRPOTrainer

    policy, tok = load_model(model, out_dir)
    rows = load_rows(data)
    args = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=generations,
        num_generations=generations,
        max_completion_length=max_completion_length,
        temperature=1.0,
        beta=0.001,
        learning_rate=1e-6,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=seed,
    )
    rewards = reward if isinstance(reward, list) else [reward]
    return GRPOTrainer(model=policy, processing_class=tok, reward_funcs=rewards, args=args, train_dataset=rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_GGUF)
    p.add_argument("--data", required=True)
    p.add_argument("--out", default="/tmp/medu1-trl-grpo")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--max-completion-length", type=int, default=32)
    p.add_argument("--backend", choices=("server", "cli"), default="server")
    p.add_argument("--url", default=None)
    p.add_argument("--medu1", default="medu1", help="the medu1 binary (cli backend)")
    a = p.parse_args()
    reward = Medu1Reward(backend=a.backend, url=a.url, medu1_bin=a.medu1)
    trainer = build_trainer(a.model, a.data, a.out, reward, a.steps, a.max_completion_length)
    trainer.train()
    for entry in trainer.state.log_history:
        if "rewards/medu1/mean" in entry:
            print(f"step {entry.get('step')}: medu1 reward mean {entry['rewards/medu1/mean']:.4f}")


if __name__ == "__main__":
    main()
