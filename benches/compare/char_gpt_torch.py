# The char_gpt example's model and training loop in PyTorch (nanoGPT-style), for side-by-side
# timing and validation loss: same data split, architecture, initialisation, optimizer groups,
# learning-rate schedule, clipping and evaluation as examples/char_gpt.rs.
#
#   python benches/compare/char_gpt_torch.py --iters 200 --threads 1
#
# Prints one line per evaluation and, last, `val_loss=<f> val_bpc=<f> ms_per_iter=<f>`.
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
p.add_argument("--train", default=os.path.join(here, "..", "..", "data", "shakespeare", "tragedies.txt"))
p.add_argument("--iters", type=int, default=2000)
p.add_argument("--eval-interval", type=int, default=250)
p.add_argument("--eval-iters", type=int, default=20)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--block-size", type=int, default=128)
p.add_argument("--n-layer", type=int, default=4)
p.add_argument("--n-head", type=int, default=4)
p.add_argument("--n-embd", type=int, default=128)
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--seed", type=int, default=1337)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

text = open(a.train).read()
cut = len(text) * 9 // 10
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
train = torch.tensor([stoi[c] for c in text[:cut]], dtype=torch.long)
val = torch.tensor([stoi[c] for c in text[cut:]], dtype=torch.long)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        e = a.n_embd
        self.ln_1, self.ln_2 = nn.LayerNorm(e), nn.LayerNorm(e)
        self.c_attn, self.attn_proj = nn.Linear(e, 3 * e), nn.Linear(e, e)
        self.c_fc, self.mlp_proj = nn.Linear(e, 4 * e), nn.Linear(4 * e, e)
        self.drop = nn.Dropout(a.dropout)

    def attention(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        q, k, v = (z.view(b, t, a.n_head, e // a.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=a.dropout if self.training else 0.0, is_causal=True)
        return self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, e))

    def forward(self, x):
        x = x + self.drop(self.attention(self.ln_1(x)))
        return x + self.drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)))))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(len(chars), a.n_embd)
        self.wpe = nn.Embedding(a.block_size, a.n_embd)
        self.h = nn.ModuleList(Block() for _ in range(a.n_layer))
        self.ln_f = nn.LayerNorm(a.n_embd)
        self.drop = nn.Dropout(a.dropout)
        for name, prm in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(prm, 0.0, 0.02 / math.sqrt(2 * a.n_layer))
            elif prm.dim() >= 2:
                nn.init.normal_(prm, 0.0, 0.02)
            elif name.endswith("bias") and "ln" not in name:
                nn.init.zeros_(prm)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t)))
        for blk in self.h:
            x = blk(x)
        return self.ln_f(x) @ self.wte.weight.t()


def batch(data):
    i = torch.randint(len(data) - a.block_size, (a.batch_size,))
    x = torch.stack([data[j : j + a.block_size] for j in i])
    y = torch.stack([data[j + 1 : j + a.block_size + 1] for j in i])
    return x, y


def loss_of(model, x, y):
    return F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1))


@torch.no_grad()
def estimate(model, data):
    model.eval()
    total = sum(loss_of(model, *batch(data)).item() for _ in range(a.eval_iters))
    model.train()
    return total / a.eval_iters


def learning_rate(it):
    warmup = min(max(a.iters // 20, 1), 100)
    if it < warmup:
        return a.lr * (it + 1) / warmup
    progress = min((it - warmup) / max(a.iters - warmup, 1), 1.0)
    lo = a.lr / 10
    return lo + 0.5 * (1 + math.cos(math.pi * progress)) * (a.lr - lo)


model = Gpt()
decay = [prm for n, prm in model.named_parameters() if prm.dim() >= 2 and not n.endswith("bias")]
plain = [prm for n, prm in model.named_parameters() if not (prm.dim() >= 2 and not n.endswith("bias"))]
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.99)
)
print(f"torch {torch.__version__}, {sum(prm.numel() for prm in model.parameters())} parameters, {a.threads} threads")
times, val_loss = [], float("nan")
for it in range(a.iters + 1):
    if it % a.eval_interval == 0 or it == a.iters:
        tl, val_loss = estimate(model, train), estimate(model, val)
        ms = 1e3 * sum(times[-a.eval_interval :]) / max(len(times[-a.eval_interval :]), 1)
        print(f"iter {it:5}: train loss {tl:.4f}, val loss {val_loss:.4f}, {ms:.0f} ms/iter", flush=True)
    if it == a.iters:
        break
    t0 = time.perf_counter()
    for g in opt.param_groups:
        g["lr"] = learning_rate(it)
    x, y = batch(train)
    loss = loss_of(model, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    times.append(time.perf_counter() - t0)
times.sort()
median = times[len(times) // 2] * 1e3 if times else float("nan")
print(f"val_loss={val_loss:.4f} val_bpc={val_loss / math.log(2):.4f} ms_per_iter={median:.1f}")
