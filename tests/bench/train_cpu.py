#!/usr/bin/env python3
"""The PyTorch side of bench-train-cpu.sh: the same GPT-2 shape, batch and
optimizer as tests/bench/train_cpu.c, written the idiomatic way (nn.Linear,
scaled_dot_product_attention, AdamW; the model is gpt2_torch.py's), on the
CPU with the same thread count.  Prints tokens_per_s.
Usage: train_cpu.py L H C T B V STEPS THREADS"""
import sys
import time

import torch

from gpt2_torch import GPT


def main():
    L, H, C, T, B, V, steps, threads = (int(a) for a in sys.argv[1:9])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = GPT(L, H, C, T, V)  # GPT-2's init, as the C side has it
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
