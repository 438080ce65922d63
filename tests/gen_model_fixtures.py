#!/usr/bin/env python3
"""Reference numbers for the CPU model (libcommon/model.c) from PyTorch.

Writes tests/fixtures/model/*.bin, read by tests/unit/test_model.c.  The
weights are not stored: both sides build them from the seeded init that
libcommon/model.h defines (splitmix64 + Box-Muller per buffer offset), and
each fixture records per-tensor sums and the first values of the init so
the C test proves it built the same weights before comparing anything.

Small-vocabulary configurations (vocab 61, padded to 128) record
everything in full: logits, loss, every parameter gradient, and every
parameter after 3 AdamW steps (with clipping and weight decay).  The
GPT-2-vocabulary configurations (50257 -> 50304) would need ~13 MB per
tensor set, so they record the loss, slices of the logits, per-tensor
gradient and update norms (float64) and slices of gradients and params.
The 3-step trajectories are recorded in float64 with tolerances derived
from PyTorch float32's own error (see make()); adamw.bin checks the
optimizer alone, on shared gradients, at 1e-5 against float32.

File format: b"GPTFIX1\\n", then records: u32 name length, name, u32 count,
count little-endian float32.  Token ids are exact in float32; an ignored
target is stored as -1.

Run: .venv/bin/python tests/gen_model_fixtures.py  (needs torch, numpy);
with the argument "sft" it writes sft-padded.bin alone, with "dropout"
dropout.bin alone, with "classify" classify.bin alone.
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "model")
GOLD = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def splitmix64_at(seed, j):
    """Output j (0-based array) of splitmix64 seeded with seed."""
    z = np.uint64(seed) + (j + np.uint64(1)) * GOLD
    z = (z ^ (z >> np.uint64(30))) * M1
    z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


def normals(seed, offset, n, std):
    k = np.arange(offset, offset + n, dtype=np.uint64)
    u1 = ((splitmix64_at(seed, np.uint64(2) * k) >> np.uint64(11)).astype(np.float64)
          * 2.0 ** -53).tolist()
    u2 = ((splitmix64_at(seed, np.uint64(2) * k + np.uint64(1)) >> np.uint64(11))
          .astype(np.float64) * 2.0 ** -53).tolist()
    # math.log/cos are the C library's, as in model.c (numpy's may differ by an ulp)
    z = [std * (math.sqrt(-2.0 * math.log(1.0 - a)) * math.cos(2.0 * math.pi * b))
         for a, b in zip(u1, u2)]
    return np.array(z, dtype=np.float64).astype(np.float32)


def tensor_table(cfg):
    """(name, shape) in buffer order, as libcommon/model.h lists them."""
    C, Vp = cfg["n_embd"], cfg["padded_vocab"]
    t = [("wte.weight", (Vp, C)), ("wpe.weight", (cfg["n_ctx"], C))]
    for i in range(cfg["n_layer"]):
        h = "h.%d." % i
        t += [(h + "ln_1.weight", (C,)), (h + "ln_1.bias", (C,)),
              (h + "attn.c_attn.weight", (3 * C, C))]
        if cfg["qkv_bias"]:
            t.append((h + "attn.c_attn.bias", (3 * C,)))
        t.append((h + "attn.c_proj.weight", (C, C)))
        if cfg["bias"]:
            t.append((h + "attn.c_proj.bias", (C,)))
        t += [(h + "ln_2.weight", (C,)), (h + "ln_2.bias", (C,)),
              (h + "mlp.c_fc.weight", (4 * C, C))]
        if cfg["bias"]:
            t.append((h + "mlp.c_fc.bias", (4 * C,)))
        t.append((h + "mlp.c_proj.weight", (C, 4 * C)))
        if cfg["bias"]:
            t.append((h + "mlp.c_proj.bias", (C,)))
    t += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    if not cfg["tied"]:
        t.append(("lm_head.weight", (Vp, C)))
    if cfg.get("n_classes"):
        t += [("cls.weight", (cfg["n_classes"], C)), ("cls.bias", (cfg["n_classes"],))]
    return t


def init_params(cfg, seed):
    params, off = {}, 0
    resid = 0.02 / math.sqrt(2.0 * cfg["n_layer"])
    for name, shape in tensor_table(cfg):
        n = int(np.prod(shape))
        a = np.zeros(n, dtype=np.float32)
        if len(shape) == 1:
            if ".ln_" in "." + name and name.endswith(".weight"):
                a[:] = 1.0
        else:
            rows = cfg["vocab_size"] if name in ("wte.weight", "lm_head.weight") else shape[0]
            std = resid if "c_proj.weight" in name else 0.02
            a[:rows * shape[1]] = normals(seed, off, rows * shape[1], std)
        params[name] = torch.tensor(a.reshape(shape), requires_grad=True)
        off += n
    return params


def drop_mult(drop, site, idx):
    """libcommon/dropout.h's multiplier (0 or 1/(1-p)) of the elements
    numbered idx (uint64 array) at a site, as a float32 tensor."""
    p = np.float32(drop["p"])
    thr = np.uint64(math.floor(float(p) * 4294967296.0))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as in C
        s = splitmix64_at(np.uint64(drop["key"]), np.uint64(site))
        keep = (splitmix64_at(s, idx) >> np.uint64(32)) >= thr
    scale = np.float32(1.0) / (np.float32(1.0) - p)
    return torch.tensor(np.where(keep, scale, np.float32(0.0)).astype(np.float32))


def drop_rows(cfg, drop, site, B, T, C):
    """The mask of a [B, T, C] activation: index ((row0 + b) n_ctx + t) C + c."""
    b, t, c = np.meshgrid(np.arange(B, dtype=np.uint64), np.arange(T, dtype=np.uint64),
                          np.arange(C, dtype=np.uint64), indexing="ij")
    row = np.uint64(drop["row0"]) + b
    return drop_mult(drop, site, (row * np.uint64(cfg["n_ctx"]) + t) * np.uint64(C) + c)


def drop_att(cfg, drop, site, B, H, T):
    """The mask of the attention weights [B, H, T, T]:
    index (((row0 + b) H + h) n_ctx + i) n_ctx + j."""
    b, h, i, j = np.meshgrid(*[np.arange(n, dtype=np.uint64) for n in (B, H, T, T)],
                             indexing="ij")
    n = np.uint64(cfg["n_ctx"])
    row = np.uint64(drop["row0"]) + b
    return drop_mult(drop, site, ((row * np.uint64(H) + h) * n + i) * n + j)


def forward(cfg, p, idx, targets, drop=None, hidden=False):
    """GPT-2, written out: the same arithmetic as model.c, in PyTorch;
    drop ({"p", "key", "row0"}) applies dropout with dropout.h's masks;
    hidden: return the final hidden states (after ln_f) instead."""
    B, T = idx.shape
    C, H, V = cfg["n_embd"], cfg["n_head"], cfg["vocab_size"]
    hs = C // H
    x = p["wte.weight"][idx] + p["wpe.weight"][:T]
    if drop:
        x = x * drop_rows(cfg, drop, 0, B, T, C)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        h = "h.%d." % i
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], 1e-5)
        qkv = F.linear(a, p[h + "attn.c_attn.weight"], p.get(h + "attn.c_attn.bias"))
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, H, hs).transpose(1, 2)
        k = k.view(B, T, H, hs).transpose(1, 2)
        v = v.view(B, T, H, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        if drop:
            att = att * drop_att(cfg, drop, 1 + 3 * i, B, H, T)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        branch = F.linear(y, p[h + "attn.c_proj.weight"], p.get(h + "attn.c_proj.bias"))
        if drop:
            branch = branch * drop_rows(cfg, drop, 2 + 3 * i, B, T, C)
        x = x + branch
        a = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], 1e-5)
        f = F.gelu(F.linear(a, p[h + "mlp.c_fc.weight"], p.get(h + "mlp.c_fc.bias")),
                   approximate="tanh")
        branch = F.linear(f, p[h + "mlp.c_proj.weight"], p.get(h + "mlp.c_proj.bias"))
        if drop:
            branch = branch * drop_rows(cfg, drop, 3 + 3 * i, B, T, C)
        x = x + branch
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], 1e-5)
    if hidden:
        return x
    head = p["wte.weight"] if cfg["tied"] else p["lm_head.weight"]
    logits = F.linear(x, head)[..., :V]  # the padding is never predicted
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
    return logits, loss


def write(path, recs):
    with open(path, "wb") as f:
        f.write(b"GPTFIX1\n")
        for name, arr in recs:
            a = np.asarray(arr, dtype="<f4").ravel()
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.size))
            f.write(a.tobytes())


def slice_at(a, n=16):
    """n values from the start and n from the middle of a flat tensor."""
    a = a.reshape(-1)
    mid = a.numel() // 2
    return torch.cat([a[:n], a[mid:mid + n]])


def adam_run(cfg, table, p, inputs, targets, lrs, wd, clip, dtype, drop=None):
    p = {n: t.detach().to(dtype).clone().requires_grad_(True) for n, t in p.items()}
    params = [p[n] for n, _ in table]
    opt = torch.optim.AdamW([{"params": [p[n] for n, s in table if len(s) == 2],
                              "weight_decay": wd},
                             {"params": [p[n] for n, s in table if len(s) == 1],
                              "weight_decay": 0.0}],
                            lr=lrs[0], betas=(0.9, 0.95), eps=1e-8,
                            foreach=False, fused=False)
    init = {n: t.detach().clone().double() for n, t in p.items()}
    ill = {n: torch.zeros(t.shape, dtype=torch.bool) for n, t in p.items()}
    losses, norms = [], []
    for s, lr in enumerate(lrs):
        opt.zero_grad(set_to_none=False)
        _, loss = forward(cfg, p, inputs, targets, drop)
        loss.backward()
        if s > 0:
            losses.append(loss.item())
        norms.append(torch.nn.utils.clip_grad_norm_(params, clip, foreach=False).item())
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.step()
        for n, _ in table:  # the rule test_model.c applies
            v = opt.state[p[n]]["exp_avg_sq"].double() / (1 - 0.95 ** (s + 1))
            ill[n] |= (v > 0) & (v.sqrt() < 1e-6)
    return {"losses": losses, "norms": norms, "init": init, "ill": ill,
            "params": {n: t.detach().double() for n, t in p.items()}}


def make(name, cfg, B, T, ignore, full, seed=1234, lrs=(1e-3, 6e-4, 3e-4),
         wd=0.1, clip=1.0, sft=None, drop=None):
    cfg = dict(cfg)
    cfg["padded_vocab"] = (cfg["vocab_size"] + 127) // 128 * 128
    V = cfg["vocab_size"]
    g = torch.Generator().manual_seed(seed + 7)
    idx = torch.randint(0, V, (B, T + 1), generator=g)
    inputs, targets = idx[:, :-1].contiguous(), idx[:, 1:].clone()
    tflat = targets.reshape(-1)
    for i in ignore:
        tflat[i] = -100
    sft_recs = []
    if sft:
        # fine-tuning examples, one a row: (length in tokens, prompt
        # tokens); the loss counts the targets that are response tokens,
        # rows shorter than the longest are padded with the pad id V - 1
        # (inputs) and ignored targets, as gpt-train --sft batches them
        pad = V - 1
        for r, (n, prompt) in enumerate(sft):
            ids = idx[r, :n].clone()
            sft_recs.append(("sft_ex%d" % r, ids.numpy()))
            for p in range(T):
                if p >= n - 1:
                    inputs[r, p] = pad
                    targets[r, p] = -100
                elif p + 1 < prompt:
                    targets[r, p] = -100
        sft_recs.append(("sft_prompt", [pr for _, pr in sft]))
        sft_recs.append(("sft_pad", [pad]))
    p = init_params(cfg, seed)
    table = tensor_table(cfg)

    recs = [("config", [cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["n_ctx"], V,
                        cfg["tied"], cfg["bias"], cfg["qkv_bias"], B, T, seed, wd, clip]),
            ("lrs", list(lrs)),
            ("inputs", inputs.reshape(-1).numpy()),
            ("targets", [-1 if t == -100 else t for t in tflat.tolist()])] + sft_recs
    for tname, _ in table:
        a = p[tname].detach().reshape(-1).double()
        recs.append(("init:" + tname, [a.sum().item(), (a * a).sum().item()] +
                     p[tname].detach().reshape(-1)[:4].tolist()))

    if drop:
        # the same batch without dropout must score differently, or the
        # fixture would not show the masks were applied
        _, plain = forward(cfg, p, inputs, targets)
        recs.append(("dropout", [drop["p"], drop["key"], drop["row0"]]))
    logits, loss = forward(cfg, p, inputs, targets, drop)
    if drop:
        assert abs(loss.item() - plain.item()) > 1e-3, (loss.item(), plain.item())
    loss.backward()
    recs.append(("loss", [loss.item()]))
    if full:
        recs.append(("logits", logits.detach().numpy()))
    else:
        rows = logits.detach().reshape(B * T, V)
        pick = [0, B * T // 2 + 1, B * T - 1]
        recs.append(("logit_rows", pick))
        recs.append(("logit_slice",
                     torch.cat([torch.cat([rows[r, :32], rows[r, V - 32:],
                                           torch.logsumexp(rows[r], 0).view(1)])
                                for r in pick]).numpy()))
    for tname, _ in table:
        gr = p[tname].grad.clone()
        if full:
            recs.append(("grad:" + tname, gr.numpy()))
        else:
            recs.append(("gradnorm:" + tname, [gr.double().norm().item()]))
            recs.append(("gradslice:" + tname, slice_at(gr).numpy()))

    # 3 AdamW steps on the same batch (PyTorch's single-tensor AdamW, weight
    # decay on 2-D tensors only, clipping by global norm), once in float32
    # and once in float64.  Adam divides by sqrt(v): where a gradient is
    # tiny, rounding noise becomes a visible step, so float32 trajectories
    # part from the exact one by far more than 1e-5 there.  The fixture
    # keeps the float64 trajectory as the truth; losses and norms along it
    # carry tolerances of max(floor, 4 x PyTorch float32's own error).
    r32 = adam_run(cfg, table, p, inputs, targets, lrs, wd, clip, torch.float32, drop)
    r64 = adam_run(cfg, table, init_params(cfg, seed), inputs, targets, lrs, wd, clip,
                   torch.float64, drop)
    rel = lambda a, b: abs(a - b) / abs(b)
    recs.append(("step_losses", r64["losses"]))
    recs.append(("step_losses_tol", [max(1e-5, 4 * rel(a, b))
                                     for a, b in zip(r32["losses"], r64["losses"])]))
    recs.append(("grad_norms", r64["norms"]))
    recs.append(("grad_norms_tol", [max(1e-4, 4 * rel(a, b))
                                    for a, b in zip(r32["norms"], r64["norms"])]))
    # Update norms include the elements where Adam amplifies noise (see
    # test_model.c), so their tolerance is 4 x PyTorch float32's own error.
    # Parameters outside those elements are held to 4 x PyTorch float32's
    # worst error over the whole model (its error on any one tensor is
    # luck: it depends on which element a cancellation hits), plus 1e-4 of
    # each element's update (the update is a function of gradients, held
    # to 1e-4).
    upd, errs = [], []
    for tname, shape in table:
        v32, v64 = r32["params"][tname], r64["params"][tname]
        ok = ~(r32["ill"][tname] | r64["ill"][tname])
        if "c_attn.bias" in tname:  # the key third: see test_model.c
            n3 = v64.numel() // 3
            ok[n3:2 * n3] = False
        else:
            u32 = (v32 - r32["init"][tname]).norm().item()
            u64 = (v64 - r64["init"][tname]).norm().item()
            upd.append(rel(u32, u64))
        if not full:
            v32, v64, ok = slice_at(v32), slice_at(v64), slice_at(ok)
        v32, v64, ok = v32.reshape(-1), v64.reshape(-1), ok.reshape(-1)
        rms = v64.pow(2).mean().sqrt()
        i64 = r64["init"][tname]
        if not full:
            i64 = slice_at(i64)
        i64 = i64.reshape(-1)
        e = (((v32 - v64).abs() - 1e-4 * (v64 - i64).abs()) / (v64.abs() + rms + 1e-30))[ok]
        errs.append(e.max().item() if e.numel() else 0.0)
    recs.append(("param3tol", [max(1e-5, 4 * max(errs))]))
    for tname, shape in table:
        v64 = r64["params"][tname]
        if full:
            recs.append(("param3:" + tname, v64.float().numpy()))
        else:
            recs.append(("paramslice:" + tname, slice_at(v64).float().numpy()))
            recs.append(("updnorm:" + tname, [(v64 - r64["init"][tname]).norm().item(),
                                              max(1e-4, 4 * max(upd))]))
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".bin")
    write(path, recs)
    print("%s: loss %.6f, %d bytes" % (path, recs[[r[0] for r in recs].index("loss")][1][0],
                                       os.path.getsize(path)), file=sys.stderr)


def make_adamw():
    """AdamW alone, fed the same gradients on both sides: 3 steps over two
    groups (decayed, not decayed), gradients spanning 1e-10..1e-1 and some
    exact zeros, clipping active on some steps.  This part is well
    conditioned, so it is held to 1e-5 against PyTorch float32 directly."""
    g = torch.Generator().manual_seed(99)
    n, nd = 1000, 600
    p0 = (torch.randn(n, generator=g) * 0.02).float()
    grads = []
    for s in range(3):
        mag = 10.0 ** (torch.rand(n, generator=g) * 9 - 10)
        gr = (torch.randn(n, generator=g) * mag).float()
        gr[torch.randperm(n, generator=g)[:50]] = 0
        grads.append(gr)
    lrs, wd, clip = (1e-3, 6e-4, 3e-4), 0.1, 0.05
    a = p0[:nd].clone().requires_grad_(True)
    b = p0[nd:].clone().requires_grad_(True)
    opt = torch.optim.AdamW([{"params": [a], "weight_decay": wd},
                             {"params": [b], "weight_decay": 0.0}],
                            lr=lrs[0], betas=(0.9, 0.95), eps=1e-8, foreach=False,
                            fused=False)
    norms = []
    for s in range(3):
        a.grad = grads[s][:nd].clone()
        b.grad = grads[s][nd:].clone()
        norms.append(torch.nn.utils.clip_grad_norm_([a, b], clip, foreach=False).item())
        for grp in opt.param_groups:
            grp["lr"] = lrs[s]
        opt.step()
    recs = [("config", [n, nd, wd, clip]), ("lrs", list(lrs)), ("p0", p0.numpy())]
    recs += [("g%d" % s, grads[s].numpy()) for s in range(3)]
    recs += [("norms", norms), ("p3", torch.cat([a.detach(), b.detach()]).numpy())]
    path = os.path.join(OUT, "adamw.bin")
    write(path, recs)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


def make_sft():
    """Fine-tuning's batch (gpt-train --sft): two examples of 9 and 6
    tokens, prompts of 3 and 2, the second padded to the first's 8
    positions; loss on response targets only."""
    small = dict(n_layer=2, n_embd=16, n_ctx=8, vocab_size=61)
    make("sft-padded", dict(small, n_head=2, tied=1, bias=1, qkv_bias=1),
         B=2, T=8, ignore=[], full=True, seed=4321, sft=[(9, 3), (6, 2)])


def make_dropout():
    """gpt-train --dropout: every site of dropout.h on, p 0.25 (more
    dropped elements than 0.1 in a model this small), rows numbered from
    3 (a micro-batch inside a step), T shorter than n_ctx (the masks'
    strides are n_ctx), and one ignored target."""
    small = dict(n_layer=2, n_embd=16, n_ctx=8, vocab_size=61)
    make("dropout", dict(small, n_head=2, tied=1, bias=1, qkv_bias=1),
         B=2, T=7, ignore=[4], full=True, seed=2468,
         drop={"p": 0.25, "key": 987654, "row0": 3})


def classify(cfg, p, idx, last, labels):
    """The classifier (gpt_model_classify): the head on each sequence's
    hidden state at its last real position; mean cross-entropy."""
    h = forward(cfg, p, idx, None, hidden=True)
    rows = h[torch.arange(idx.shape[0]), torch.tensor(last)]
    logits = F.linear(rows, p["cls.weight"], p["cls.bias"])
    return logits, F.cross_entropy(logits, torch.tensor(labels))


def make_classify():
    """Classification fine-tuning (gpt-train --classify): three sequences
    of 8, 5 and 3 real tokens padded to 8, three classes; the series'
    trainable part (the last block, ln_f and the head).  Records the
    logits, the loss, the trainable tensors' gradients, and every tensor
    after 3 AdamW steps over the trainable ones (float64; the frozen stay
    as initialised)."""
    cfg = dict(n_layer=2, n_head=2, n_embd=16, n_ctx=8, vocab_size=61, tied=1, bias=1,
               qkv_bias=1, n_classes=3)
    cfg["padded_vocab"] = 128
    B, T, seed = 3, 8, 777
    last, labels = [7, 4, 2], [2, 0, 1]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 60, (B, T), generator=g)
    for b, l in enumerate(last):
        idx[b, l + 1:] = 60  # the pad id, after the last real token
    table = tensor_table(cfg)
    last_block = "h.%d." % (cfg["n_layer"] - 1)
    trainable = [n for n, _ in table
                 if n.startswith(last_block) or n.startswith("ln_f.") or n.startswith("cls.")]
    p = init_params(cfg, seed)
    logits, loss = classify(cfg, p, idx, last, labels)
    loss.backward()
    recs = [("config", [cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["n_ctx"],
                        cfg["vocab_size"], cfg["tied"], cfg["bias"], cfg["qkv_bias"],
                        cfg["n_classes"], B, T, seed]),
            ("inputs", idx.reshape(-1).numpy()), ("last", last), ("labels", labels),
            ("logits", logits.detach().numpy()), ("loss", [loss.item()]),
            ("trainable", [1 if n in trainable else 0 for n, _ in table])]
    for n in trainable:
        recs.append(("grad:" + n, p[n].grad.numpy()))
    lrs, wd, clip = (1e-2, 6e-3, 3e-3), 0.1, 1.0
    q = {n: t.detach().double().clone().requires_grad_(n in trainable) for n, t in p.items()}
    params = [q[n] for n in trainable]
    opt = torch.optim.AdamW([{"params": [q[n] for n in trainable if q[n].dim() == 2],
                              "weight_decay": wd},
                             {"params": [q[n] for n in trainable if q[n].dim() == 1],
                              "weight_decay": 0.0}],
                            lr=lrs[0], betas=(0.9, 0.95), eps=1e-8, foreach=False, fused=False)
    losses = []
    for s, lr in enumerate(lrs):
        opt.zero_grad(set_to_none=False)
        _, l = classify(cfg, q, idx, last, labels)
        l.backward()
        losses.append(l.item())
        torch.nn.utils.clip_grad_norm_(params, clip, foreach=False)
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.step()
    recs.append(("lrs", list(lrs)))
    recs.append(("step_losses", losses))
    for n, _ in table:
        recs.append(("param3:" + n, q[n].detach().float().numpy()))
    path = os.path.join(OUT, "classify.bin")
    write(path, recs)
    print("%s: loss %.6f, %d bytes" % (path, loss.item(), os.path.getsize(path)),
          file=sys.stderr)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    # one fixture alone, leaving the others as committed
    if sys.argv[1:] == ["sft"]:
        make_sft()
        return
    if sys.argv[1:] == ["dropout"]:
        make_dropout()
        return
    if sys.argv[1:] == ["classify"]:
        make_classify()
        return
    make_adamw()
    make_sft()
    make_dropout()
    make_classify()
    small = dict(n_layer=2, n_embd=16, n_ctx=8, vocab_size=61)
    # tied head with every bias (GPT-2), full context, two ignored targets
    make("small-tied-bias", dict(small, n_head=2, tied=1, bias=1, qkv_bias=1),
         B=2, T=8, ignore=[3, 12], full=True)
    # the 163M model's choices: untied, no qkv bias; T shorter than n_ctx
    make("small-untied-noqkv", dict(small, n_head=4, tied=0, bias=1, qkv_bias=0),
         B=2, T=7, ignore=[0], full=True)
    # no biases at all, tied and untied
    make("small-tied-nobias", dict(small, n_head=4, tied=1, bias=0, qkv_bias=0),
         B=3, T=5, ignore=[], full=True)
    make("small-untied-nobias", dict(small, n_head=2, tied=0, bias=0, qkv_bias=0),
         B=1, T=8, ignore=[7], full=True)
    big = dict(n_layer=2, n_head=4, n_embd=64, n_ctx=32, vocab_size=50257)
    make("gpt2vocab-tied-bias", dict(big, tied=1, bias=1, qkv_bias=1),
         B=2, T=32, ignore=[5], full=False)
    make("gpt2vocab-untied-noqkv", dict(big, tied=0, bias=1, qkv_bias=0),
         B=2, T=24, ignore=[], full=False)


if __name__ == "__main__":
    main()
