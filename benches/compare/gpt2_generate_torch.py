# GPT-2 generation speed, Hugging Face transformers' `generate` against tensorgrad's
# `examples/gpt2_generate.rs`, on the same randomly initialised checkpoint (nothing can be
# downloaded here; speed does not depend on the weights' values).
#
#   python benches/compare/gpt2_generate_torch.py --dir /tmp/gpt2-random --threads 1
#   cargo run --release --example gpt2_generate -- --model-dir /tmp/gpt2-random \
#       --prompt-ids 464,2068,7586,21831 --max-new-tokens 64
#
# The first command writes the checkpoint (GPT-2 small's shape by default: 12 layers, 12 heads,
# 768 dims, 50257 tokens) if the directory has none, then times greedy generation with the
# key/value cache, median of --rounds runs, and prints `tokens_per_s=<f>` last.
import argparse
import os
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

p = argparse.ArgumentParser()
p.add_argument("--dir", default="/tmp/gpt2-random")
p.add_argument("--n-layer", type=int, default=12)
p.add_argument("--n-embd", type=int, default=768)
p.add_argument("--n-head", type=int, default=12)
p.add_argument("--max-new-tokens", type=int, default=64)
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)

if not os.path.exists(os.path.join(a.dir, "model.safetensors")):
    torch.manual_seed(0)
    config = GPT2Config(n_layer=a.n_layer, n_embd=a.n_embd, n_head=a.n_head)
    GPT2LMHeadModel(config).save_pretrained(a.dir)
model = GPT2LMHeadModel.from_pretrained(a.dir).eval()
prompt = torch.tensor([[464, 2068, 7586, 21831]])
times = []
with torch.no_grad():
    for _ in range(a.rounds + 1):
        t0 = time.perf_counter()
        out = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=a.max_new_tokens,
            min_new_tokens=a.max_new_tokens,
            do_sample=False,
            use_cache=True,
            pad_token_id=0,
        )
        times.append(time.perf_counter() - t0)
times = sorted(times[1:])
median = times[len(times) // 2]
print(f"torch {torch.__version__}, {a.threads} threads; generated_ids={','.join(map(str, out[0].tolist()))}")
print(f"tokens_per_s={a.max_new_tokens / median:.1f}")
