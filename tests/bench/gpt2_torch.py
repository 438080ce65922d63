"""gpt2_torch: the GPT-2 of the C engines written in PyTorch, for the
benchmarks that race them (train_cpu.py for bench-train-cpu.sh,
bench_gpu_torch.py for bench-gpu.sh).  Pre-LayerNorm blocks, tanh GELU,
scaled_dot_product_attention, a head tied to the token embedding over a
vocabulary padded to a multiple of 128 and never predicted there, and
GPT-2's initialisation (normal 0.02, the projections into the residual
stream scaled by 1/sqrt(2 L), biases zero, padding rows zero)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.attn_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    """L layers, H heads, width C, context ctx, vocabulary V; forward(idx,
    targets) is the mean cross-entropy loss (in float32 under autocast)."""

    def __init__(self, L, H, C, ctx, V):
        super().__init__()
        self.V = V
        Vp = (V + 127) // 128 * 128
        self.wte = nn.Embedding(Vp, C)
        self.wpe = nn.Embedding(ctx, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if n.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)
        with torch.no_grad():
            self.wte.weight[V:].zero_()

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.h:
            x = b(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)[..., :self.V]
        return F.cross_entropy(logits.float().reshape(-1, self.V), targets.reshape(-1))
