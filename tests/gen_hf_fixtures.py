#!/usr/bin/env python3
"""Makes tests/fixtures/hf: two tiny Hugging Face GPT2LMHeadModel folders and
what PyTorch says about them, for the import/export, sampling and benchmark
scoring checks (test_infer.c, tests/cli/{convert,sample,eval}.sh).

  tiny.tiktoken      the first 511 ranks of GPT-2's vocabulary; with
                     <|endoftext|> as id 511 that is a 512-token vocabulary
  random/            a GPT-2 with random weights (2 layers, 2 heads, width
                     32, context 64, tied head), weights scaled up so that
                     greedy choices are clear-cut
  bigram/            an untied 1-layer GPT-2 whose blocks are zero, so its
                     next-token guess depends on the current token only; its
                     head is built from the bigrams of BIGRAM_SENTENCES, so the
                     hand-made benchmark files have known answers
  hellaswag.jsonl, lambada.jsonl   hand-made benchmark files
  expected.json      for random/: the prompt's ids and logits, a greedy
                     continuation, and HellaSwag/LAMBADA scores computed here
                     in PyTorch with the same rules as evalbench.c; for
                     bigram/: the same scores

Needs torch, transformers, safetensors, tiktoken (pip install into .venv; the
test suite itself only reads the committed files).  Run from the repository
root:  .venv/bin/python tests/gen_hf_fixtures.py
"""
import base64
import json
import math
import os
import shutil
import sys

import tiktoken
import torch
from transformers import GPT2Config, GPT2LMHeadModel

SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "hf")
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
VOCAB = 512
EOT = 511
PROMPT = "Every effort moves you"
GREEDY_TOKENS = 20

# Every word is one token of the tiny vocabulary and leads to one successor
# only, so the bigram model knows each sentence's next word.
BIGRAM_SENTENCES = [" we will go out for all", " they can be up and not",
                    " he has his that from me", " you are in this with it"]

HELLASWAG = [
    {"ctx": " we will go", "endings": ["out for all", "to his me", "the they is", "by of on"],
     "label": 0},
    {"ctx": " they can", "endings": ["do the or", "be up and not", "at but was", "it you in"],
     "label": 1},
    {"ctx": " he has", "endings": ["not who as", "by the", "his that from me", "are with"],
     "label": 2},
    {"ctx": " you are", "endings": ["was at on", "on do", "to by this", "in this with it"],
     "label": 3},
    {"ctx": " we will go out for all they can", "endings": ["be up", "go out"], "label": 0},
]

# Scored as a whole (gpt-eval --text) and, its first 129 tokens, as a shard.
TEXT = ("I had always thought Jack Gisburn rather a cheap genius--though a good fellow "
        "enough--so it was no great surprise to me to hear that, in the height of his "
        "glory, he had dropped his painting, married a rich widow, and established "
        "himself in a villa on the Riviera. The height of his glory--that was what the "
        "women called it. I can hear Mrs. Gideon Thwing--his last Chicago sitter--"
        "deploring his unaccountable abdication.")

LAMBADA = [
    " we will go out for all",
    " they can be up and not",
    " he has his that from me",
    " you are in this with it",
    " we will go out for me",
    " they can be up and it",
]


def encoding():
    ranks = {}
    with open(os.path.join(SHARED, "data", "gpt2", "gpt2.tiktoken"), "rb") as f:
        for line in f:
            tok, rank = line.split()
            if int(rank) >= EOT:
                break
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks, tiktoken.Encoding(name="tiny", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                                    special_tokens={"<|endoftext|>": EOT})


def save(model, folder):
    path = os.path.join(OUT, folder)
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path, safe_serialization=True)
    for name in os.listdir(path):
        if name not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(path, name))


def tiny_gpt2(seed, n_embd, n_layer, tied):
    """A GPT2LMHeadModel over the tiny vocabulary (context 64, 2 heads) in
    eval mode, its initial weights drawn after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=n_embd, n_layer=n_layer, n_head=2,
                     bos_token_id=EOT, eos_token_id=EOT, tie_word_embeddings=tied)
    return GPT2LMHeadModel(cfg).eval()


def random_model():
    m = tiny_gpt2(1004, n_embd=32, n_layer=2, tied=True)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
            elif name.endswith("wte.weight"):
                p.copy_(0.25 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return m


def bigram_model(enc):
    m = tiny_gpt2(99, n_embd=48, n_layer=1, tied=False)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or \
               name.endswith("ln_f.weight"):
                p.fill_(1.0)
            else:
                p.zero_()
        wte = m.transformer.wte.weight
        wte.copy_(torch.randn_like(wte))
        # the final LayerNorm of a lone embedding (blocks add nothing)
        normed = torch.nn.functional.layer_norm(wte, (m.config.n_embd,), eps=1e-5)
        head = m.lm_head.weight
        for sentence in BIGRAM_SENTENCES:
            ids = enc.encode(sentence)
            assert len(ids) == len(sentence.split()), "not one token per word: %r" % sentence
            for a, b in zip(ids, ids[1:]):
                head[b] += 0.5 * normed[a]
    return m


def logits_of(m, ids):
    with torch.no_grad():
        return m(torch.tensor([ids])).logits[0].double()


def fit(seq, n_ctx):
    return seq[-n_ctx:]


def score_hellaswag(m, enc, n_ctx):
    items, ok_sum, ok_norm = [], 0, 0
    for ex in HELLASWAG:
        ctx = enc.encode(ex["ctx"])
        sums, means = [], []
        for e in ex["endings"]:
            end = enc.encode(" " + e)
            seq = fit(ctx + end, n_ctx)
            lp = torch.log_softmax(logits_of(m, seq), dim=-1)
            first = len(seq) - len(end)
            loss = sum(-lp[first + i - 1, t].item() for i, t in enumerate(end))
            sums.append(loss)
            means.append(loss / len(end))
        ps = min(range(len(sums)), key=lambda i: (sums[i], i))
        pn = min(range(len(means)), key=lambda i: (means[i], i))
        ok_sum += ps == ex["label"]
        ok_norm += pn == ex["label"]
        items.append({"sum": sums, "mean": means, "pred": ps, "pred_norm": pn})
    n = len(HELLASWAG)
    return {"n": n, "acc": ok_sum / n, "acc_norm": ok_norm / n, "items": items}


def score_lambada(m, enc, n_ctx):
    items, ok, total = [], 0, 0.0
    for text in LAMBADA:
        ctx_text, word = text.rsplit(" ", 1)
        ctx, tgt = enc.encode(ctx_text), enc.encode(" " + word)
        seq = fit(ctx + tgt, n_ctx)
        lg = logits_of(m, seq)
        lp = torch.log_softmax(lg, dim=-1)
        first = len(seq) - len(tgt)
        correct = all(int(lg[first + i - 1].argmax()) == t for i, t in enumerate(tgt))
        loss = sum(-lp[first + i - 1, t].item() for i, t in enumerate(tgt))
        ok += correct
        total += loss
        items.append({"correct": bool(correct), "loss": loss})
    n = len(LAMBADA)
    return {"n": n, "acc": ok / n, "ppl": math.exp(total / n), "items": items}


def score_windows(m, enc, ids, T):
    """Mean loss over windows of T + 1 tokens starting every T tokens (the
    last may be short), and bits per byte of the predicted tokens."""
    nats, count, nbytes = 0.0, 0, 0
    for at in range(0, len(ids) - 1, T):
        w = ids[at:at + T + 1]
        if len(w) < 2:
            break
        lp = torch.log_softmax(logits_of(m, w[:-1]), dim=-1)
        for i, t in enumerate(w[1:]):
            nats += -lp[i, t].item()
            count += 1
            nbytes += len(enc.decode_single_token_bytes(t))
    return {"tokens": count, "loss": nats / count, "bpb": nats / math.log(2) / nbytes}


def main():
    ranks, enc = encoding()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tiny.tiktoken"), "wb") as f:
        for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n")
    with open(os.path.join(OUT, "hellaswag.jsonl"), "w") as f:
        for ex in HELLASWAG:
            f.write(json.dumps(ex) + "\n")
    with open(os.path.join(OUT, "lambada.jsonl"), "w") as f:
        for text in LAMBADA:
            f.write(json.dumps({"text": text}) + "\n")

    rnd = random_model()
    big = bigram_model(enc)
    save(rnd, "random")
    save(big, "bigram")
    # reload what was written, so the numbers are those of the files
    rnd = GPT2LMHeadModel.from_pretrained(os.path.join(OUT, "random")).eval()
    big = GPT2LMHeadModel.from_pretrained(os.path.join(OUT, "bigram")).eval()

    ids = enc.encode(PROMPT)
    lg = logits_of(rnd, ids)
    seq = list(ids)
    for _ in range(GREEDY_TOKENS):
        top = logits_of(rnd, seq)[-1].topk(2)
        assert top.values[0] - top.values[1] > 1e-3, "greedy choice too close to call"
        seq.append(int(top.indices[0]))
    greedy = seq[len(ids):]
    with torch.no_grad():
        gen = rnd.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                           use_cache=True, pad_token_id=EOT, eos_token_id=None)
    assert gen[0, len(ids):].tolist() == greedy, "generate() disagrees with the plain loop"
    assert EOT not in greedy, "greedy continuation hits <|endoftext|>; pick another prompt"

    exp = {
        "prompt": PROMPT,
        "ids": ids,
        "logits": [[float(x) for x in row] for row in lg.float().tolist()],
        "greedy": greedy,
        "greedy_text": enc.decode_bytes(greedy).decode("utf-8", "replace"),
        "random": {"hellaswag": score_hellaswag(rnd, enc, 64), "lambada": score_lambada(rnd, enc, 64)},
        "bigram": {"hellaswag": score_hellaswag(big, enc, 64), "lambada": score_lambada(big, enc, 64)},
    }
    text_ids = enc.encode(TEXT)
    exp["text"] = dict(score_windows(rnd, enc, text_ids, 64), text=TEXT)
    exp["shard"] = dict(score_windows(rnd, enc, text_ids[:129], 64), ids=text_ids[:129])
    bh, bl = exp["bigram"]["hellaswag"], exp["bigram"]["lambada"]
    assert bh["acc_norm"] == 1.0, "bigram model misses a hand-made HellaSwag answer: %r" % bh
    assert [it["correct"] for it in bl["items"]] == [True] * 4 + [False] * 2, bl
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")
    print("greedy:", greedy, repr(exp["greedy_text"]))
    print("random hellaswag", exp["random"]["hellaswag"]["acc"], exp["random"]["hellaswag"]["acc_norm"],
          "lambada", exp["random"]["lambada"]["acc"], exp["random"]["lambada"]["ppl"])
    print("bigram hellaswag", bh["acc"], bh["acc_norm"], "lambada", bl["acc"], bl["ppl"])


if __name__ == "__main__":
    sys.exit(main())
