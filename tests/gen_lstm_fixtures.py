#!/usr/bin/env python3
"""Reference numbers for the character-level LSTM from PyTorch.

The model is PyTorch's own, and its state-dict names are the interchange
format:

    embedding = nn.Embedding(V, E); lstm = nn.LSTM(E, H, L, batch_first=True)
    decoder = nn.Linear(H, V)
    logits, (h, c) = decoder(lstm(embedding(x), (h0, c0)))

with the gates of lstm.weight_ih_l<k> / weight_hh_l<k> / bias_ih_l<k> /
bias_hh_l<k> stacked in PyTorch's order i, f, g, o (rows [0,H) input gate,
[H,2H) forget, [2H,3H) cell candidate, [3H,4H) output).

It writes two things.

1. tests/fixtures/model/lstm.bin (GPTFIX1, below): V 50, E 8, H 12, L 2,
   B 3, T 5, NW 3 windows.  "config" [V, E, H, L, B, T, NW]; the weights in
   full, "w.<name>" for every state-dict tensor (row-major, PyTorch's
   shapes: PyTorch's default init from a fixed seed, the LSTM and decoder
   tensors then multiplied by 2 so that the gradients are not tiny).  Each
   batch row b reads its own stream of NW*T+1 random ids; "in" [NW*B*T] is
   ordered window, row, time: in[w][b][t] = stream[b][w*T+t], "tg" the same
   shifted by one.  Truncated BPTT at the initial weights from a zero
   state: for window w the state is the previous window's final state
   (detached); "logits.<w>" [B*T*V] (row, time, vocab), "loss.<w>" [1]
   (mean cross-entropy over the B*T positions), "h.<w>", "c.<w>" [L*B*H]
   (the final states: layer, row, unit) and "grad.<w>.<name>" (d loss_w /
   d every parameter).  A nonzero given initial state: "init.h", "init.c"
   [L*B*H] (random) on window 0, with "init.logits", "init.loss",
   "init.hout", "init.cout" and "init.grad.<name>".  Two AdamW steps from
   the initial weights: step s trains on window s, step 1 starting from
   step 0's final state (detached; that is h.0/c.0), lr 1e-2.  Each step:
   zero the gradients, backward, clip the global norm at 0.3 (the norms
   here are ~0.4-0.55: at gpt-train's default 1.0 clipping would never
   act, at 0.3 it acts on both steps) the way optim.c does
   (scale max/(norm + 1e-6) when norm > max; PyTorch's clip_grad_norm_),
   PyTorch's single-tensor AdamW with weight decay on the 2-D tensors only
   (the embedding, weight_ih/hh and the decoder weight; biases are not
   decayed), the project's defaults betas (0.9, 0.95), eps 1e-8 (as
   adam_run in gen_model_fixtures.py and adamw_config_default):
       p *= 1 - lr wd (decayed only); m = b1 m + (1-b1) g;
       v = b2 v + (1-b2) g^2;
       p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
   Records "train.lrs" [2], "train.hyper" [beta1, beta2, eps, wd, clip],
   "train.loss" [2] (each step's loss, before its update), "train.norm" [2]
   (the pre-clip global norm), "after.<name>" (every parameter after step
   2) and "train.tol" [loss, norm, param]: max(1e-5, 4 x PyTorch float32's
   own error against the float64 record), relative (param: to each
   tensor's largest |value|).  The seed is one where no clipped gradient
   element is nonzero but under 1e-6 in magnitude (Adam's first steps turn
   a tiny gradient's rounding noise into a whole lr-sized step; the script
   asserts this).  Exact zeros (embedding rows of ids a window does not
   read) stay exact: their m and v are 0 and only decay moves them.

   Everything is computed in float64 (the weights are float32 values, the
   ids exact) and stored as float32, so the records are the exact answer
   rounded once.  PyTorch float32 on the same inputs is within ~1e-6
   (relative to each tensor's largest magnitude) of the forward records
   and gradients; make_model() prints the measured errors.

2. tests/fixtures/lstm/torch/ (config.json, model.safetensors float32, the
   state dict under the names above): a model for `gpt-convert import`, V
   257 (bytes; id 256 is never used), E 16, H 32, L 2, default init from a
   fixed seed then 200 Adam steps (lr 3e-3, clip 1.0, batches of 32 x 128
   from zero state) on the first 100 kB of tinyshakespeare as bytes.  And
   tests/fixtures/lstm/torch-loss.txt: `file` (the path under
   /work/shared/data), `bytes N` (4096), `loss X`: the mean cross-entropy
   (nats, float64 from the stored float32 weights) of the first N bytes
   scored as one stream from zero state (inputs bytes[0..N-2], targets
   bytes[1..N-1], N-1 positions), and `loss_T64 X`: the same in windows of
   64 positions (the last one 63) with the state carried across windows,
   detached; the mean over all N-1 positions, equal to `loss` up to
   rounding.

File format: b"GPTFIX1\\n", then records: u32 name length, name, u32 count,
count little-endian float32.  Token ids are exact in float32.

Run: .venv/bin/python tests/gen_lstm_fixtures.py  (needs torch, numpy,
safetensors); with the argument "model" it writes lstm.bin alone, with
"convert" the tests/fixtures/lstm/ files alone.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_model_fixtures import write  # noqa: E402  (the GPTFIX1 writer)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_MODEL = os.path.join(HERE, "fixtures", "model")
OUT_LSTM = os.path.join(HERE, "fixtures", "lstm")
DATA = "/work/shared/data"
TEXT = "text/tinyshakespeare.txt"  # under DATA
BETAS, EPS = (0.9, 0.95), 1e-8


class CharLSTM(nn.Module):
    def __init__(self, V, E, H, L):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, state):
        y, state = self.lstm(self.embedding(x), state)
        return self.decoder(y), state


def names(m):
    return [n for n, _ in m.named_parameters()]


def clone_as(m, dtype):
    q = CharLSTM(m.embedding.num_embeddings, m.embedding.embedding_dim,
                 m.lstm.hidden_size, m.lstm.num_layers)
    q.load_state_dict(m.state_dict())
    return q.to(dtype)


def window_loss(m, x, y, state):
    logits, state = m(x, state)
    V = logits.shape[-1]
    return logits, F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)), state


def grads(m):
    return {n: p.grad.detach().clone() for n, p in m.named_parameters()}


def tbptt(m, xs, ys, state):
    """Forward/backward of every window at fixed weights, state carried."""
    out = []
    for x, y in zip(xs, ys):
        m.zero_grad(set_to_none=False)
        logits, loss, (h, c) = window_loss(m, x, y, state)
        loss.backward()
        out.append((logits.detach(), loss.item(), h.detach(), c.detach(), grads(m)))
        state = (h.detach(), c.detach())
    return out


def adam_run(m0, dtype, xs, ys, state, lrs, wd, clip):
    """gen_model_fixtures.adam_run's conventions on the LSTM."""
    m = clone_as(m0, dtype)
    params = list(m.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() == 2],
                              "weight_decay": wd},
                             {"params": [p for p in params if p.dim() == 1],
                              "weight_decay": 0.0}],
                            lr=lrs[0], betas=BETAS, eps=EPS, foreach=False, fused=False)
    losses, norms = [], []
    ill = {n: torch.zeros(p.shape, dtype=torch.bool) for n, p in m.named_parameters()}
    for s, lr in enumerate(lrs):
        opt.zero_grad(set_to_none=False)
        _, loss, (h, c) = window_loss(m, xs[s], ys[s], state)
        loss.backward()
        state = (h.detach(), c.detach())
        losses.append(loss.item())
        norms.append(torch.nn.utils.clip_grad_norm_(params, clip, foreach=False).item())
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.step()
        for n, p in m.named_parameters():  # where Adam amplifies rounding noise
            v = opt.state[p]["exp_avg_sq"].double() / (1 - BETAS[1] ** (s + 1))
            ill[n] |= (v > 0) & (v.sqrt() < 1e-6)
    return losses, norms, {n: p.detach().double() for n, p in m.named_parameters()}, ill


def relerr(a, b):
    """Max |a - b| over the tensor's largest |b|."""
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def make_model():
    V, E, H, L, B, T, NW = 50, 8, 12, 2, 3, 5, 3
    torch.manual_seed(2070)  # a seed with no gradient element under 1e-6
    m = CharLSTM(V, E, H, L)
    with torch.no_grad():  # larger than default: gradients not tiny
        for n, p in m.named_parameters():
            if not n.startswith("embedding."):
                p.mul_(2.0)
    g = torch.Generator().manual_seed(77)
    stream = torch.randint(0, V, (B, NW * T + 1), generator=g)
    xs = [stream[:, w * T:(w + 1) * T].contiguous() for w in range(NW)]
    ys = [stream[:, w * T + 1:(w + 1) * T + 1].contiguous() for w in range(NW)]
    h0 = (torch.randn(L, B, H, generator=g) * 0.5).float()
    c0 = (torch.randn(L, B, H, generator=g) * 0.5).float()
    zero = torch.zeros(L, B, H)

    recs = [("config", [V, E, H, L, B, T, NW])]
    recs += [("w." + n, p.detach().numpy()) for n, p in m.named_parameters()]
    recs += [("in", torch.stack(xs).reshape(-1).numpy()),
             ("tg", torch.stack(ys).reshape(-1).numpy())]

    m64, m32 = clone_as(m, torch.float64), clone_as(m, torch.float32)
    r64 = tbptt(m64, xs, ys, (zero.double(), zero.double()))
    r32 = tbptt(m32, xs, ys, (zero, zero))
    err = {"logits": 0.0, "loss": 0.0, "state": 0.0, "grad": 0.0}
    for w, (a, b) in enumerate(zip(r64, r32)):
        logits, loss, h, c, gr = a
        recs += [("logits.%d" % w, logits.numpy()), ("loss.%d" % w, [loss]),
                 ("h.%d" % w, h.numpy()), ("c.%d" % w, c.numpy())]
        recs += [("grad.%d.%s" % (w, n), gr[n].numpy()) for n in names(m)]
        err["logits"] = max(err["logits"], relerr(b[0], logits))
        err["loss"] = max(err["loss"], abs(b[1] - loss) / abs(loss))
        err["state"] = max(err["state"], relerr(b[2], h), relerr(b[3], c))
        err["grad"] = max([err["grad"]] + [relerr(b[4][n], gr[n]) for n in names(m)])

    # a given nonzero initial state, window 0
    (logits, loss, h, c, gr), = tbptt(m64, xs[:1], ys[:1], (h0.double(), c0.double()))
    (l32, s32, h32, c32, g32), = tbptt(m32, xs[:1], ys[:1], (h0, c0))
    recs += [("init.h", h0.numpy()), ("init.c", c0.numpy()),
             ("init.logits", logits.numpy()), ("init.loss", [loss]),
             ("init.hout", h.numpy()), ("init.cout", c.numpy())]
    recs += [("init.grad." + n, gr[n].numpy()) for n in names(m)]
    err["logits"] = max(err["logits"], relerr(l32, logits))
    err["grad"] = max([err["grad"]] + [relerr(g32[n], gr[n]) for n in names(m)])
    assert abs(loss - r64[0][1]) > 1e-3, "the given state must change the loss"

    # two AdamW steps, float64 truth; tolerances of max(floor, 4 x PyTorch
    # float32's own error) as in gen_model_fixtures.make()
    lrs, wd, clip = (1e-2, 1e-2), 0.1, 0.3
    L64, N64, P64, ill64 = adam_run(m, torch.float64, xs, ys,
                                    (zero.double(), zero.double()), lrs, wd, clip)
    L32, N32, P32, ill32 = adam_run(m, torch.float32, xs, ys, (zero, zero), lrs, wd, clip)
    nill = sum(int((ill64[n] | ill32[n]).sum()) for n in names(m))
    assert nill == 0, "%d parameters with near-zero Adam v: reseed" % nill
    ltol = max(1e-5, 4 * max(abs(a - b) / abs(b) for a, b in zip(L32, L64)))
    ntol = max(1e-5, 4 * max(abs(a - b) / abs(b) for a, b in zip(N32, N64)))
    perr = max(relerr(P32[n], P64[n]) for n in names(m))
    ptol = max(1e-5, 4 * perr)
    recs += [("train.lrs", list(lrs)), ("train.hyper", [BETAS[0], BETAS[1], EPS, wd, clip]),
             ("train.loss", L64), ("train.norm", N64), ("train.tol", [ltol, ntol, ptol])]
    recs += [("after." + n, P64[n].float().numpy()) for n in names(m)]
    assert L64[0] == r64[0][1]
    assert all(nv > clip for nv in N64), "clipping should be active: %r" % N64

    os.makedirs(OUT_MODEL, exist_ok=True)
    path = os.path.join(OUT_MODEL, "lstm.bin")
    write(path, recs)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)
    print("  loss.w %s (ln V %.4f), init.loss %.6f" %
          (" ".join("%.6f" % r[1] for r in r64), math.log(V), loss), file=sys.stderr)
    print("  train.loss %s, train.norm %s, train.tol %s" %
          (" ".join("%.6f" % x for x in L64), " ".join("%.6f" % x for x in N64),
           " ".join("%.2g" % x for x in (ltol, ntol, ptol))), file=sys.stderr)
    print("  PyTorch float32 vs float64 (max err / max |ref|): " +
          ", ".join("%s %.2g" % kv for kv in err.items()) + ", after %.2g" % perr,
          file=sys.stderr)


def stream_loss(m, ids, win):
    """Mean cross-entropy of ids[1:] given ids[:-1], one stream from zero
    state, in windows of win positions (state carried, detached)."""
    x, y = ids[:-1].view(1, -1), ids[1:].view(1, -1)
    L, H = m.lstm.num_layers, m.lstm.hidden_size
    dt = m.decoder.weight.dtype
    state = (torch.zeros(L, 1, H, dtype=dt), torch.zeros(L, 1, H, dtype=dt))
    total = 0.0
    with torch.no_grad():
        for s in range(0, x.shape[1], win):
            logits, state = m(x[:, s:s + win], state)
            state = (state[0].detach(), state[1].detach())
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                     y[:, s:s + win].reshape(-1), reduction="sum").item()
    return total / x.shape[1]


def make_convert():
    from safetensors.torch import load_file, save_file
    V, E, H, L = 257, 16, 32, 2
    with open(os.path.join(DATA, TEXT), "rb") as f:
        text = f.read()
    train = torch.tensor(list(text[:100000]), dtype=torch.long)
    torch.manual_seed(4242)
    m = CharLSTM(V, E, H, L)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(4243)
    B, T = 32, 128
    zero = (torch.zeros(L, B, H), torch.zeros(L, B, H))
    for step in range(200):
        off = torch.randint(0, train.numel() - T - 1, (B,), generator=g)
        x = torch.stack([train[o:o + T] for o in off.tolist()])
        y = torch.stack([train[o + 1:o + T + 1] for o in off.tolist()])
        opt.zero_grad()
        _, loss, _ = window_loss(m, x, y, zero)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0, foreach=False)
        opt.step()
        if step % 50 == 0 or step == 199:
            print("  convert: step %d train loss %.4f" % (step, loss.item()), file=sys.stderr)

    folder = os.path.join(OUT_LSTM, "torch")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write('{"model_type": "char-lstm", "vocab_size": %d, "embedding_dim": %d, '
                '"hidden_size": %d, "num_layers": %d}\n' % (V, E, H, L))
    st = {n: t.detach().float().contiguous() for n, t in m.state_dict().items()}
    path = os.path.join(folder, "model.safetensors")
    save_file(st, path, metadata={"format": "pt"})

    # score from what was stored, in float64
    q = CharLSTM(V, E, H, L)
    q.load_state_dict(load_file(path))
    q = q.double()
    N = 4096
    ids = torch.tensor(list(text[:N]), dtype=torch.long)
    full = stream_loss(q, ids, N)
    t64 = stream_loss(q, ids, 64)
    assert abs(full - t64) < 1e-9, (full, t64)
    assert full < math.log(V) - 1.0, full
    loss_path = os.path.join(OUT_LSTM, "torch-loss.txt")
    with open(loss_path, "w") as f:
        f.write("file %s\nbytes %d\nloss %.6f\nloss_T64 %.6f\n" % (TEXT, N, full, t64))
    print("%s: %d bytes; %s: %d bytes; loss %.6f, loss_T64 %.6f (ln %d %.4f)" %
          (path, os.path.getsize(path), loss_path, os.path.getsize(loss_path), full, t64,
           V, math.log(V)), file=sys.stderr)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if sys.argv[1:] == ["model"]:
        make_model()
        return
    if sys.argv[1:] == ["convert"]:
        make_convert()
        return
    if sys.argv[1:]:
        sys.exit("usage: gen_lstm_fixtures.py [model|convert]")
    make_model()
    make_convert()


if __name__ == "__main__":
    main()
