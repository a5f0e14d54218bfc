"""TRL's GRPOTrainer, timed per step (bench/grpo_vs_trl.sh and bench/grpo_lora_vs_trl.sh run it).

Arguments: MODEL PROMPTS.jsonl STEPS MAX_TOKENS THREADS OUT_DIR RESULT.json, where MODEL is a
GGUF file (dequantized to f32 by transformers) or a Hugging Face folder. With LORA_RANK set,
the policy is a PEFT LoRA model (rank LORA_RANK, alpha LORA_ALPHA, every projection, no
dropout), whose reference for the KL term is the base with the adapter disabled, as TRL does
with a peft_config. GRADIENT_CHECKPOINTING=0 turns off TRL's default gradient checkpointing
(bench/gpu.sh: medu1 keeps every activation on a GPU). On a GPU, TRL trains there (f32, as
medu1) and the JSON adds the peak memory torch allocated. Writes JSON with the per-step wall times and completion token counts to
RESULT.json.
"""
import json
import os
import sys
import time

import torch

model_path, prompts_path, steps, max_tokens, threads, out_dir, result_path = sys.argv[1:8]
torch.set_num_threads(int(threads))

import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

if os.path.isdir(model_path):
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
else:
    folder, name = os.path.split(model_path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers dequantizes GGUF weights to dense f32 but still marks the model as quantized,
    # which its Trainer refuses to fine-tune; the weights are plain tensors, so drop the mark.
    model.is_quantized = False
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # TRL loads its reference model from the policy's path, so give it a plain checkpoint folder.
    plain = os.path.join(out_dir, "hf")
    model.save_pretrained(plain)
    tok.save_pretrained(plain)
    model = AutoModelForCausalLM.from_pretrained(plain, dtype=torch.float32)
if tok.pad_token is None:
    tok.pad_token = tok.eos_token
peft_config = None
lora_rank = int(os.environ.get("LORA_RANK", "0"))
if lora_rank:
    import peft  # noqa: E402

    peft_config = peft.LoraConfig(
        r=lora_rank,
        lora_alpha=float(os.environ.get("LORA_ALPHA", 2 * lora_rank)),
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
rows = [json.loads(l) for l in open(prompts_path)]
# Enough copies for every step's group (one prompt x 8 completions per step).
rows = rows * (8 * (int(steps) + 1) // len(rows) + 1)
# medu1 writes the prompt already rendered with the model's chat template (as the released
# Med-U1 data does); TRL gets that text as a plain prompt so it is not templated twice.
dataset = Dataset.from_list([{"prompt": r["prompt"][0]["content"]} for r in rows])

completion_tokens = []


def format_reward(completions, **kwargs):
    # Rewards are not what is timed; a format check keeps the group's rewards varied.
    out = []
    for c in completions:
        text = c[-1]["content"] if isinstance(c, list) else c
        completion_tokens.append(len(tok(text)["input_ids"]))
        out.append(1.0 if "</think>" in text and "<answer>" in text else 0.0)
    return out


class StepTimer(TrainerCallback):
    def __init__(self):
        self.start = None
        self.times = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


timer = StepTimer()
args = GRPOConfig(
    output_dir=out_dir,
    per_device_train_batch_size=8,
    num_generations=8,
    max_completion_length=int(max_tokens),
    temperature=1.0,
    beta=0.001,
    learning_rate=float(os.environ.get("LR", "2e-6")),
    max_steps=int(steps),
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    seed=42,
    bf16=False,
    dataloader_num_workers=0,
    gradient_checkpointing=os.environ.get("GRADIENT_CHECKPOINTING", "1") == "1",
)
trainer = GRPOTrainer(
    model=model,
    processing_class=tok,
    reward_funcs=format_reward,
    args=args,
    train_dataset=dataset,
    callbacks=[timer],
    peft_config=peft_config,
)
trainer.train()
per_step = [sum(completion_tokens[i * 8:(i + 1) * 8]) for i in range(len(timer.times))]
with open(result_path, "w") as f:
    json.dump({
    "trl": trl.__version__,
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "gradient_checkpointing": args.gradient_checkpointing,
    "peft": __import__("peft").__version__ if lora_rank else None,
    "step_s": timer.times,
    "device": "cuda" if torch.cuda.is_available() else "cpu",
    "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    "completion_tokens": per_step,
    }, f)
