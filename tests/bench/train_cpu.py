#!/usr/bin/env python3
"""The PyTorch side of bench-train-cpu.sh: the same GPT-2 shape, batch and
optimizer as tests/bench/train_cpu.c, written the idiomatic way (nn.Linear,
scaled_dot_product_attention, AdamW), on the CPU with the same thread
count.  Prints tokens_per_s.  Usage: train_cpu.py L H C T B V STEPS THREADS"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, H, C, T, V):
        super().__init__()
        self.V = V
        Vp = (V + 127) // 128 * 128
        self.wte = nn.Embedding(Vp, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            x = b(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)[..., :self.V]
        return F.cross_entropy(logits.reshape(-1, self.V), targets.reshape(-1))


def main():
    L, H, C, T, B, V, steps, threads = (int(a) for a in sys.argv[1:9])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = GPT(L, H, C, T, V)
    with torch.no_grad():  # GPT-2's init, as the C side has it
        for n, t in model.named_parameters():
            if t.dim() == 2:
                t.normal_(0, 0.02 / (2 * L) ** 0.5 if n.endswith("proj.weight") else 0.02)
            elif "ln" not in n:
                t.zero_()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    idx = torch.randint(0, V, (B, T))
    tg = torch.randint(0, V, (B, T))
    t0 = 0.0
    for s in range(steps + 1):
        if s == 1:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(idx, tg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dt = time.perf_counter() - t0
    print("tokens_per_s %.1f" % (B * T * steps / dt))
    print("train_cpu.py: last loss %.4f" % loss.item(), file=sys.stderr)


if __name__ == "__main__":
    main()
