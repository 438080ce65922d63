"""The reference encoder for tests: tiktoken's GPT-2 encoding built from
the rank file in ../shared/data/gpt2 (tiktoken cannot download here).
Import gpt2() to get a tiktoken.Encoding, or None when tiktoken is absent."""
import os

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


GPT4_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""


def gpt2(pattern=GPT2_PATTERN):
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return None
    shared = os.environ.get("SHARED") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
    ranks = load_tiktoken_bpe(os.path.join(shared, "data", "gpt2", "gpt2.tiktoken"))
    return tiktoken.Encoding("gpt2", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})
