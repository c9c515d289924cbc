"""A deliberately simple byte-level BPE trainer, written from design.md's rules alone.

It shares no code with storytok. Rules, in order:

1. Read the file as UTF-8 (bytes decoded, no newline translation).
2. Split the text on the special tokens (literal match, longest first); the specials are
   dropped, never counted, and nothing spans them.
3. Pre-tokenize each piece with the GPT-2 pattern through the `regex` package; count each
   pre-token's UTF-8 bytes.
4. Words are tuples of token ids, starting as single bytes (id == byte value).
5. Repeat: count every adjacent pair in every word, weighted by the word's count; choose the
   max by (count, (left_bytes, right_bytes)); give it the next id; replace it in every word
   left to right, non-overlapping. Stop when bytes + merges + specials == vocab_size, or no
   pair is left.
6. Vocab: ids 0-255 bytes, then merges in order, then specials.

Two pair-count strategies are offered:
- `full_recount=True` recounts every pair of every word each step: the rules verbatim, used on
  small inputs and to cross-check the other;
- the default keeps a pair->count table and, for each word containing the chosen pair,
  subtracts that word's *entire* pair contribution, rewrites the word, and adds its entire new
  contribution back. That is a full recount restricted to the words that changed, so it is
  obviously equal to the full recount (words without the pair contribute identically before
  and after). The max is still a plain scan over all pairs.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import regex

GPT2_PAT = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def split_on_specials(text: str, special_tokens: list[str]) -> list[str]:
    """Text pieces between special tokens (specials themselves removed). Longest special first."""
    if not special_tokens:
        return [text]
    alt = "|".join(regex.escape(s) for s in sorted(set(special_tokens), key=len, reverse=True))
    return regex.split(alt, text)


def count_pretokens(text: str, special_tokens: list[str]) -> Counter:
    counts: Counter = Counter()
    for piece in split_on_specials(text, special_tokens):
        counts.update(m.encode("utf-8") for m in GPT2_PAT.findall(piece))
    return counts


def merge_word(word: tuple[int, ...], a: int, b: int, new: int) -> tuple[int, ...]:
    out = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def word_pairs(word: tuple[int, ...]) -> Counter:
    return Counter(zip(word, word[1:]))


def best_pair(pair_counts: dict, vocab: dict[int, bytes]):
    """max by (count, (left_bytes, right_bytes)) over pairs with a positive count; None if none."""
    best_count = max((c for c in pair_counts.values() if c > 0), default=0)
    if best_count <= 0:
        return None
    cands = [p for p, c in pair_counts.items() if c == best_count]
    return max(cands, key=lambda p: (vocab[p[0]], vocab[p[1]]))


def train_from_counts(word_counts: dict[bytes, int], vocab_size: int, special_tokens: list[str],
                      full_recount: bool = False):
    vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
    merges: list[tuple[bytes, bytes]] = []
    n_merges = vocab_size - 256 - len(special_tokens)
    words = [tuple(w) for w in word_counts]          # bytes -> tuple of byte ids
    counts = list(word_counts.values())

    if full_recount:
        for _ in range(max(n_merges, 0)):
            pc: Counter = Counter()
            for w, c in zip(words, counts):
                for p in zip(w, w[1:]):
                    pc[p] += c
            p = best_pair(pc, vocab)
            if p is None:
                break
            new = len(vocab)
            vocab[new] = vocab[p[0]] + vocab[p[1]]
            merges.append((vocab[p[0]], vocab[p[1]]))
            words = [merge_word(w, p[0], p[1], new) if len(w) > 1 else w for w in words]
    else:
        pc = defaultdict(int)
        where = defaultdict(set)                      # pair -> indices of words that contain it
        for i, (w, c) in enumerate(zip(words, counts)):
            for p, k in word_pairs(w).items():
                pc[p] += k * c
                where[p].add(i)
        for _ in range(max(n_merges, 0)):
            p = best_pair(pc, vocab)
            if p is None:
                break
            new = len(vocab)
            vocab[new] = vocab[p[0]] + vocab[p[1]]
            merges.append((vocab[p[0]], vocab[p[1]]))
            for i in list(where[p]):
                w, c = words[i], counts[i]
                for q, k in word_pairs(w).items():   # remove the word's whole contribution
                    pc[q] -= k * c
                    if pc[q] == 0:
                        del pc[q]
                    where[q].discard(i)
                w = merge_word(w, p[0], p[1], new)
                words[i] = w
                for q, k in word_pairs(w).items():   # add the rewritten word's whole contribution
                    pc[q] += k * c
                    where[q].add(i)
            assert p not in pc, "merged pair must be gone from every word"
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges


def oracle_train_bpe(input_path, vocab_size: int, special_tokens: list[str], full_recount: bool = False):
    with open(input_path, "rb") as f:
        text = f.read().decode("utf-8")
    return train_from_counts(count_pretokens(text, special_tokens), vocab_size, special_tokens, full_recount)


if __name__ == "__main__":  # python tests/oracle_bpe.py FILE VOCAB  -> timing
    import sys
    import time
    t = time.perf_counter()
    v, m = oracle_train_bpe(sys.argv[1], int(sys.argv[2]), ["<|endoftext|>"],
                            full_recount=len(sys.argv) > 3)
    print(len(v), len(m), f"{time.perf_counter() - t:.1f}s", m[:5], m[-3:])
