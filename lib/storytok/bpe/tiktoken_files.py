"""tiktoken's rank files (`tokenizer.tiktoken`) and `tiktoken.Encoding`s, to and from a BPE.

A rank file is one `base64(token bytes) rank` line per ordinary token, the format
`tiktoken.load.load_tiktoken_bpe` reads. tiktoken has no merge list: a token's rank is at
once its id and its merge priority (adjacent pieces whose concatenation has the lowest rank
merge first). A BPE given as vocab + merges is therefore the same tokenizer as its rank file
only when

- every ordinary token has one id, and ids run 0..n-1 (special tokens may fill gaps);
- merges make their tokens in increasing id order (GPT-2's files and storytok's trained
  tokenizers do; the gpt2-top10k kind renumbers and cannot be exported);
- each merge is the split tiktoken itself would find: running tiktoken's BPE on the token's
  bytes with only lower ranks ends in exactly the merge's two parts. This also rules out
  multi-byte tokens that no merge makes (tiktoken would merge into them).

`export_ranks` checks exactly that and refuses anything else in one line, so an export is
never a silently different tokenizer; `merges_from_ranks` recovers the merge list from a
rank file with that same rule (what Hugging Face's tiktoken converter does), so a file
storytok wrote loads back to the same vocab, merges and ids.

tiktoken is a dev dependency, imported only by `to_encoding`.
"""
from __future__ import annotations

import base64
import binascii
import os
import tempfile
import warnings
from pathlib import Path

from storytok.errors import StorytokError, StorytokWarning

FILE_NAME = "tokenizer.tiktoken"
ENCODING_NAME = "storytok"


def _tiktoken_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's BPE of `token` using only ranks below `max_rank`: repeatedly merge the
    adjacent pair whose concatenation has the lowest rank (the leftmost on ties)."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best, at = max_rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1], max_rank)
            if r < best:
                best, at = r, i
        if at < 0:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return parts


def merges_from_ranks(ranks: dict[bytes, int], where: str) -> list[tuple[bytes, bytes]]:
    """The merge list of a rank file: for each multi-byte token in rank order, the two parts
    tiktoken's BPE builds it from out of lower ranks; one line naming the token otherwise."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = _tiktoken_parts(ranks, token, rank)
        if len(parts) != 2:
            raise StorytokError(f"{where}: token {token!r} (rank {rank}) cannot be built from two tokens of lower "
                                f"rank (tiktoken's BPE stops at {len(parts)} parts); not a BPE rank file")
        merges.append((parts[0], parts[1]))
    return merges


def export_ranks(tok) -> tuple[dict[bytes, int], dict[str, int]]:
    """(mergeable ranks, special token ids) giving exactly `tok`'s ids in tiktoken, or one
    line saying why this tokenizer cannot be a tiktoken encoding."""
    if not hasattr(tok, "merges") or getattr(tok, "unk_id", None) is not None:
        raise StorytokError(f"a {getattr(tok, 'kind', type(tok).__name__)} tokenizer cannot be a tiktoken encoding: "
                            f"its ids are a renumbering of GPT-2's and <|unk|> stands for many GPT-2 tokens "
                            f"(export its GPT-2 base, tok.gpt2.to_tiktoken(), and map ids with tok.gpt2_ids)")
    why = "cannot be written as tiktoken ranks"
    specials = dict(tok.special_ids)
    special_ids = set(specials.values())
    for s in specials:
        for t in specials:
            if s != t and t.startswith(s):
                raise StorytokError(f"special tokens {s!r} and {t!r} overlap (one begins the other): tiktoken picks "
                                    f"between them in no fixed order, storytok takes the longer; {why}")
    ranks: dict[bytes, int] = {}
    for i, b in sorted(tok.vocab.items()):
        if i in special_ids:
            continue
        if b in ranks:
            raise StorytokError(f"token {b!r} has two ids ({ranks[b]} and {i}); tiktoken gives each token one rank, "
                                f"so this tokenizer {why}")
        ranks[b] = i
    top = max(ranks.values())
    holes = sorted(set(range(top + 1)) - set(ranks.values()) - special_ids)
    if holes:
        raise StorytokError(f"ids skip {holes[0]}" + (f" and {len(holes) - 1:,} more" if len(holes) > 1 else "")
                            + f" below the largest ordinary id {top}; a rank file numbers its tokens without gaps, "
                              f"so this tokenizer {why}")
    made = {a + b for a, b in tok.merges}
    orphan = next((i for b, i in ranks.items() if len(b) > 1 and b not in made), None)
    if orphan is not None:
        raise StorytokError(f"token {tok.vocab[orphan]!r} (id {orphan}) is made by no merge, but tiktoken merges "
                            f"any pieces that form a token; this tokenizer {why}")
    prev = -1
    for k, (a, b) in enumerate(tok.merges):
        rank = ranks.get(a + b)
        if rank is None:
            raise StorytokError(f"merge {k} makes {a + b!r}, which is a special token; this tokenizer {why}")
        if rank <= prev:
            raise StorytokError(f"ids are not in merge order (merge {k} makes id {rank}, merge {k - 1} made id "
                                f"{prev}); tiktoken's rank is both id and merge priority, so this tokenizer {why} "
                                f"without renumbering its ids")
        prev = rank
        parts = _tiktoken_parts(ranks, a + b, rank)
        if parts != [a, b]:
            raise StorytokError(f"merge {k} makes {a + b!r} from {a!r} + {b!r}, but tiktoken's rank order builds it "
                                f"from {' + '.join(map(repr, parts))}; this tokenizer {why}")
    return ranks, specials


def write_rank_file(path, ranks: dict[bytes, int]) -> None:
    """`base64 rank` lines in rank order (tiktoken's dump_tiktoken_bpe), written atomically."""
    path = Path(path)
    lines = b"".join(base64.b64encode(b) + b" %d\n" % r for b, r in sorted(ranks.items(), key=lambda kv: kv[1]))
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
        f.write(lines)
    os.replace(f.name, path)


def save_rank_file(directory, tok) -> bool:
    """Write `directory`/tokenizer.tiktoken for `tok` (True), or, when tiktoken cannot express
    it, remove any stale one and warn with the reason (False): the other files still hold it."""
    path = Path(directory) / FILE_NAME
    try:
        ranks, _ = export_ranks(tok)
    except StorytokError as e:
        path.unlink(missing_ok=True)
        warnings.warn(f"{path}: not written: {e}", StorytokWarning, stacklevel=3)
        return False
    write_rank_file(path, ranks)
    return True


def read_rank_file(path, special_ids=()) -> dict[bytes, int]:
    """A rank file, strictly: every line `base64 rank`, each token and rank once, ranks
    0..n-1 without gaps except the ids in `special_ids`, all 256 single bytes present."""
    where = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise StorytokError(f"{where}: no such tiktoken rank file") from None
    except IsADirectoryError:
        raise StorytokError(f"{where}: is a directory, expected a tiktoken rank file") from None
    ranks: dict[bytes, int] = {}
    line_of_rank: dict[int, int] = {}
    line_of_token: dict[bytes, int] = {}
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise StorytokError(f"{where}: line {lineno} is {line[:40]!r}; each line of a tiktoken rank file is "
                                f"`base64(token) rank`")
        b64, rank_text = fields
        try:
            token = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise StorytokError(f"{where}: line {lineno}: {b64[:40]!r} is not valid base64; "
                                f"not a tiktoken rank file (or a damaged one)") from None
        if not token:
            raise StorytokError(f"{where}: line {lineno} has an empty token")
        if not rank_text.isdigit():
            raise StorytokError(f"{where}: line {lineno}: rank {rank_text[:20]!r} is not a non-negative integer")
        rank = int(rank_text)
        if rank in line_of_rank:
            raise StorytokError(f"{where}: line {lineno}: rank {rank} was already given on line {line_of_rank[rank]}; "
                                f"each rank must be unique")
        if token in line_of_token:
            raise StorytokError(f"{where}: line {lineno}: token {token!r} was already given on line "
                                f"{line_of_token[token]}; each token must appear once")
        line_of_rank[rank], line_of_token[token] = lineno, lineno
        ranks[token] = rank
    if not ranks:
        raise StorytokError(f"{where}: no tokens; not a tiktoken rank file")
    clash = set(special_ids) & set(line_of_rank)
    if clash:
        r = min(clash)
        raise StorytokError(f"{where}: rank {r} (line {line_of_rank[r]}) is also given to a special token; "
                            f"choose special ids the file does not use")
    top = max(line_of_rank)
    holes = sorted(set(range(top + 1)) - set(line_of_rank) - set(special_ids))
    if holes:
        raise StorytokError(f"{where}: ranks skip {holes[0]}" + (f" and {len(holes) - 1:,} more" if len(holes) > 1 else "")
                            + f" (largest rank {top}); ranks must run 0..n-1 without gaps (a special token may fill "
                              f"one: pass special_tokens={{token: id}})")
    missing = [x for x in range(256) if bytes([x]) not in ranks]
    if missing:
        raise StorytokError(f"{where}: lacks {len(missing)} single byte(s) (e.g. {bytes([missing[0]])!r}); "
                            f"a byte-level BPE rank file has all 256")
    return ranks


def special_id_map(special_tokens, n_ranks: int) -> dict[str, int]:
    """Special tokens as {token: id}: a dict is taken as given; a list numbers them after the
    ranks, in order (tiktoken's gpt2 convention: <|endoftext|> = number of ranks)."""
    if special_tokens is None:
        return {}
    if isinstance(special_tokens, dict):
        out = {}
        for s, i in special_tokens.items():
            if not isinstance(s, str) or not s or not isinstance(i, int) or isinstance(i, bool) or i < 0:
                raise StorytokError(f"special token {s!r}: {i!r} must be a non-empty str mapped to a non-negative id")
            out[s] = i
        if len(set(out.values())) != len(out):
            raise StorytokError("two special tokens are given the same id; each special token needs its own")
        return out
    if isinstance(special_tokens, str):
        raise StorytokError(f"special_tokens={special_tokens!r}: pass a list of tokens or a dict {{token: id}}")
    return {s: n_ranks + k for k, s in enumerate(dict.fromkeys(special_tokens))}


def read_tiktoken(path, special_tokens=None):
    """(vocab, merges, special token list) for Tokenizer(...), from a rank file."""
    where = os.fspath(path)
    # a list numbers specials after the ranks, so it needs the rank count; read leniently first
    specials = special_tokens if isinstance(special_tokens, dict) or special_tokens is None else None
    ranks = read_rank_file(path, special_id_map(specials, 0).values())
    specials = special_id_map(special_tokens, len(ranks))
    for s, i in specials.items():
        if s.encode("utf-8") in ranks:
            raise StorytokError(f"{where}: special token {s!r} is also an ordinary token (rank "
                                f"{ranks[s.encode('utf-8')]}) in the file; tiktoken would keep both")
    merges = merges_from_ranks(ranks, where)
    vocab = {r: b for b, r in ranks.items()}
    for s, i in specials.items():
        vocab[i] = s.encode("utf-8")
    return vocab, merges, sorted(specials, key=specials.get)


def to_encoding(tok, name: str = ENCODING_NAME):
    """`tok` as a tiktoken.Encoding (GPT-2 pattern, specials with their ids)."""
    ranks, specials = export_ranks(tok)
    try:
        import tiktoken
    except ImportError:
        raise StorytokError("tiktoken is not installed; `pip install tiktoken` to use Tokenizer.to_tiktoken() "
                            "(storytok itself does not need it)") from None
    from storytok.pretokenize.pretokenizer import GPT2_PATTERN

    return tiktoken.Encoding(name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
