#!/usr/bin/env python3
"""The PyTorch side of bench-lstm.sh: the char-rnn shape of
tests/bench/lstm_cpu.c written the idiomatic way (nn.Embedding, nn.LSTM,
nn.Linear, cross-entropy, Adam, clip_grad_norm_ 5), the hidden state
carried from window to window and detached (truncated BPTT), on the CPU
with the same thread count.  Prints tokens_per_s (wall) and
cpu_tokens_per_s (tokens per CPU-second of the process, all threads).
Usage: lstm_cpu.py V E H L T B STEPS THREADS"""
import sys
import time

import torch
from torch import nn


class CharRNN(nn.Module):
    def __init__(self, V, E, H, L):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True, dropout=0.0)
        self.decoder = nn.Linear(H, V)

    def forward(self, idx, state):
        y, state = self.lstm(self.embedding(idx), state)
        return self.decoder(y), state


def main():
    V, E, H, L, T, B, steps, threads = (int(a) for a in sys.argv[1:9])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = CharRNN(V, E, H, L)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.0)
    # a fresh window of random bytes for every step, drawn beforehand
    idx = torch.randint(0, 256, (steps + 1, B, T))
    tg = torch.randint(0, 256, (steps + 1, B, T))
    state = (torch.zeros(L, B, H), torch.zeros(L, B, H))
    t0 = c0 = 0.0
    for s in range(steps + 1):
        if s == 1:  # the first step warms up; it is not timed
            t0 = time.perf_counter()
            c0 = time.process_time()
        opt.zero_grad(set_to_none=True)
        logits, state = model(idx[s], state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), tg[s].reshape(-1))
        loss.backward()
        state = (state[0].detach(), state[1].detach())
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    dt = time.perf_counter() - t0
    dc = time.process_time() - c0
    print("tokens_per_s %.1f" % (B * T * steps / dt))
    print("cpu_tokens_per_s %.1f" % (B * T * steps / dc))
    print("lstm_cpu.py: last loss %.4f" % loss.item(), file=sys.stderr)


if __name__ == "__main__":
    main()
