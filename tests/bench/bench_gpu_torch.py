#!/usr/bin/env python3
"""bench_gpu_torch: the PyTorch side of bench-gpu.sh.  The same GPT-2 as
the CUDA engine (gpt2_torch.py: pre-LayerNorm blocks, tanh GELU, tied head
over a vocabulary padded to 128 and never predicted there), trained the way
a PyTorch user would train it fast: bf16 autocast,
scaled_dot_product_attention (flash), fused AdamW, torch.compile (one
compilation a process; --no-compile for eager, which a GPU session with
minutes to spend may prefer), gradient clipping at 1.0.  Random tokens;
prints one line in the format of bench_gpu.c, with the same FLOPs per
token (6 N + 12 L C T), after the warm-up's seconds on stderr (most of
them compilation), so a session can budget its next run."""
import argparse
import sys
import time

import torch

from gpt2_torch import GPT

PRESETS = {"d12": (12, 12, 768), "d24": (24, 16, 1024), "d36": (36, 20, 1280),
           "d48": (48, 25, 1600)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="d12")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--peak", type=float, default=0.0, help="bf16 dense TFLOP/s")
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()
    if a.model not in PRESETS:
        sys.exit("bench_gpu_torch: unknown model '%s' (%s)" % (a.model, ", ".join(PRESETS)))
    if not torch.cuda.is_available():
        sys.exit("bench_gpu_torch: no cuda device")
    L, H, C = PRESETS[a.model]
    V, ctx, B, T = 50257, 1024, a.batch, a.context
    torch.manual_seed(1)
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = "cuda"
    model = GPT(L, H, C, ctx, V).to(dev)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step_model = model if a.no_compile else torch.compile(model)
    x = torch.randint(0, V, (B, T), device=dev)
    y = torch.randint(0, V, (B, T), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    for _ in range(3):  # compilation and autotuning happen here
        step()
    torch.cuda.synchronize()
    print("bench_gpu_torch: warm-up %.1f s (%s)" % (time.perf_counter() - t0,
          "eager" if a.no_compile else "torch.compile"), file=sys.stderr)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / a.steps
    n = V * C + ctx * C + L * (12 * C * C + 13 * C) + 2 * C
    flops_tok = 6.0 * n + 12.0 * L * C * T
    mfu = 100.0 * flops_tok * B * T / dt / (a.peak * 1e12) if a.peak > 0 else 0.0
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    print("torch   %s B=%-3d T=%d  %9.0f tok/s  step %7.1f ms  MFU %5.1f%%  peak %6.2f GiB  "
          "loss %.3f%s" % (a.model, B, T, B * T / dt, dt * 1e3, mfu, peak_gib, loss,
                           "  (eager)" if a.no_compile else ""))


if __name__ == "__main__":
    main()
