"""Statistics of an encoded split, accumulated while its flat arrays are written.

What counts as what (also written into stats.json under "definitions"):

- row: what lies between two `<|endoftext|>` separators (one Parquet row, one offsets entry).
- story: a row with some non-whitespace text. TinyStories files end with
  "<|endoftext|>\\n", so their last row is a lone "\\n": it stays in the arrays (decoding
  must give the file back) but is counted under `blank_rows`, not as a story, and is left
  out of the per-story numbers. Whitespace here is ASCII (space, \\t, \\n, \\r, \\v, \\f).
- tokens: length of the flat array, i.e. every story and blank-row token plus the
  separators; `bytes` = the text it decodes to (the documents joined by the separator: for
  one .txt input, the file's size); `bytes_per_token` = bytes / tokens. `input_bytes` is the
  size of the input files on disk (JSON, compressed or Parquet bytes), `input_files` their
  number, `bad_docs` the null or missing texts read as empty documents (--skip-bad-docs).
- tokens per story (mean, median, p95, max; share over 512): story tokens only, separator
  excluded; percentiles interpolate linearly (numpy's default).
- token frequencies (top tokens, vocabulary use) count every token of the flat array,
  separators included, since that is what a model trained on it sees.

With a gpt2-top10k tokenizer (GPT-2's BPE restricted to its most common tokens, unknown
tokens -> `<|unk|>`), each split also reports, from the Parquet column `unk_gpt2_ids` (the
GPT-2 token behind every `<|unk|>`, recorded at encode time):

- unk: `tokens` (how many `<|unk|>`), `rate` (that / tokens of the flat array, separators
  included, like every frequency here), `bytes` (the text those unks stand for) and
  `byte_share` (that / input bytes).
- kept_bytes_share: the share of the input bytes covered by kept tokens (1 - unk byte_share;
  separators count as covered: `<|endoftext|>` is always kept).
- gpt2_tokens_used: distinct GPT-2 tokens the split's text uses (separator included):
  `distinct` = `kept` (those with a compact id) + `unknown` (those that became `<|unk|>`).
- blank rows are decided on the GPT-2 tokens, so an `<|unk|>` standing for whitespace is
  whitespace.

Memory: a frequency count per vocabulary entry and two small numbers per row (a 2 GB split
has ~2.7M rows), never the tokens themselves.
"""
from __future__ import annotations

import numpy as np
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from storytok.errors import StorytokError
from storytok.sources.inputs import EOT
from storytok.store.parquet_store import manifest_text_bytes

TOP_TOKENS = 20
LONG_STORY_TOKENS = 512
NEVER_USED_SAMPLE = 50
_ASCII_WS = b" \t\n\r\x0b\x0c"

DEFINITIONS = {
    "row": "text between two <|endoftext|> separators: one Parquet row, one offsets entry",
    "story": "a row holding some non-whitespace text",
    "blank_rows": "rows that are empty or ASCII whitespace only, e.g. the lone \\n after a file's last "
                  "separator; kept in the arrays, left out of per-story numbers",
    "tokens": "length of the flat array: story tokens + blank-row tokens + separators",
    "bytes": "UTF-8 bytes the flat array decodes to: the documents joined by <|endoftext|> (one .txt input: its size)",
    "input_bytes": "size of the input files on disk (JSON, compressed or Parquet bytes)",
    "bad_docs": "null or missing texts read as empty documents (--skip-bad-docs)",
    "tokens_per_story": "story tokens without the separator; percentiles interpolate linearly",
    "top_tokens": "frequencies over the whole flat array, separators included",
}


def describe_inputs(m: dict) -> str:
    """The inputs a manifest records: the file, or 'N files (first ... last)'."""
    files = [f["path"] for f in m["inputs"]]
    return files[0] if len(files) == 1 else f"{len(files)} files ({files[0]} ... {files[-1]})"


def _token_text(tok, i: int) -> str:
    return tok.decode([int(i)])


def longest_tokens(tok, n: int, among: np.ndarray | None = None) -> list[dict]:
    """The `n` longest non-special tokens by bytes (lowest id first on ties), optionally
    only among ids `among`."""
    lengths = tok.token_byte_lengths()
    ids = np.arange(lengths.size) if among is None else np.asarray(among, dtype=np.int64)
    ids = ids[~np.isin(ids, list(tok.special_ids.values())) & (lengths[ids] > 0)]
    best = ids[np.lexsort((ids, -lengths[ids]))[:n]]
    return [{"id": int(i), "text": _token_text(tok, i), "bytes": int(lengths[i])} for i in best]


def longest_token(tok, among: np.ndarray | None = None) -> dict | None:
    found = longest_tokens(tok, 1, among)
    return found[0] if found else None


GPT2_TOP10K_DEFINITIONS = {
    "unk": "<|unk|> tokens: count, rate (of tokens, separators included), the bytes they stand for and "
           "their share of the input bytes (from the Parquet column unk_gpt2_ids)",
    "kept_bytes_share": "share of the input bytes covered by kept tokens (1 - unk.byte_share)",
    "gpt2_tokens_used": "distinct GPT-2 tokens in the split's text, separator included: kept + unknown",
}


def _unk_id(tok) -> int | None:
    return getattr(tok, "unk_id", None)


def definitions(tok) -> dict:
    return DEFINITIONS if _unk_id(tok) is None else {**DEFINITIONS, **GPT2_TOP10K_DEFINITIONS}


def tokenizer_summary(tok, directory) -> dict:
    out = {"dir": str(directory), "kind": getattr(tok, "kind", "bpe"), "fingerprint": tok.fingerprint(),
           "vocab_size": len(tok), "special_tokens": list(tok.special_tokens), "longest_token": longest_token(tok)}
    if _unk_id(tok) is not None:   # gpt2-top10k: where <|unk|> is, and what the kept set was counted on
        out["special_ids"] = dict(tok.special_ids)
        out["base_vocab_size"] = len(tok.gpt2)
        out["counted"] = dict(tok.counted)
    return out


class StatsAccumulator:
    """Feed it each piece of a split as it is flattened; `result()` gives the stats.json entry."""

    def __init__(self, tok, manifest: dict):
        self.tok = tok
        self.manifest = manifest
        lengths = tok.token_byte_lengths()
        self.counts = np.zeros(max(len(tok), lengths.size), dtype=np.int64)
        ws = np.zeros(self.counts.size, dtype=bool)
        for i, b in tok.vocab.items():
            ws[i] = len(b) > 0 and all(c in _ASCII_WS for c in b)
        self.is_ws = ws
        self._row_tokens: list[np.ndarray] = []
        self._row_blank: list[np.ndarray] = []
        self._row_bytes = 0
        self.flat_tokens = 0
        self.unk = _unk_id(tok)
        if self.unk is not None:   # gpt2-top10k: what the unks stood for, per GPT-2 id
            g = tok.gpt2
            self._gpt2_len = g.token_byte_lengths()
            self._gpt2_ws = np.zeros(self._gpt2_len.size, dtype=bool)
            for i, b in g.vocab.items():
                self._gpt2_ws[i] = len(b) > 0 and all(c in _ASCII_WS for c in b)
            self.unk_gpt2_counts = np.zeros(self._gpt2_len.size, dtype=np.int64)
            self.unk_bytes = 0

    def unk_whitespace(self, values: np.ndarray, unk_gpt2: np.ndarray | None) -> np.ndarray:
        """Whether the GPT-2 token behind each <|unk|> of values is whitespace (gpt2-top10k;
        an empty array otherwise), after checking there is one GPT-2 id per <|unk|>."""
        if self.unk is None:
            return np.zeros(0, dtype=bool)
        n_unk = int(np.count_nonzero(values == self.unk))
        if unk_gpt2 is None or unk_gpt2.size != n_unk:
            raise StorytokError(f"{describe_inputs(self.manifest)}: the Parquet parts hold {n_unk:,} <|unk|> tokens "
                                f"but {0 if unk_gpt2 is None else unk_gpt2.size:,} unk_gpt2_ids; run `make encode` again")
        return self._gpt2_ws[unk_gpt2]

    def add(self, lengths: np.ndarray, text_tokens: np.ndarray, n_bytes: np.ndarray, flat_tokens: int,
            unk_gpt2: np.ndarray | None = None) -> None:
        """One piece of the split, flattened by kernels.stories.flatten_rows (which also added
        its token frequencies to `counts`): per row its tokens and how many are not
        whitespace, and its bytes; flat_tokens went into the flat array. unk_gpt2
        (gpt2-top10k): the GPT-2 id behind each <|unk|>, in order."""
        self.flat_tokens += int(flat_tokens)
        if self.unk is not None:
            unk_gpt2 = np.asarray(unk_gpt2, dtype=np.int64)
            self.unk_gpt2_counts += np.bincount(unk_gpt2, minlength=self.unk_gpt2_counts.size)
            self.unk_bytes += int(self._gpt2_len[unk_gpt2].sum())
        self._row_tokens.append(np.asarray(lengths).astype(np.int32))
        self._row_blank.append(np.asarray(text_tokens) == 0)
        self._row_bytes += int(n_bytes.sum())

    def result(self) -> dict:
        tok, m = self.tok, self.manifest
        row_tokens = np.concatenate(self._row_tokens)
        blank = np.concatenate(self._row_blank)
        story = row_tokens[~blank].astype(np.int64)
        rows = row_tokens.size
        input_bytes = manifest_text_bytes(m)
        if self._row_bytes + (rows - 1) * len(EOT.encode()) != input_bytes:
            raise StorytokError(f"{describe_inputs(m)}: the encoded stories hold "
                                f"{self._row_bytes + (rows - 1) * len(EOT.encode()):,} bytes but the input has "
                                f"{input_bytes:,}; encoding lost text (a storytok bug, please report it)")
        used = np.flatnonzero(self.counts)
        never = np.flatnonzero(self.counts[: len(tok)] == 0)
        order = np.argsort(-self.counts, kind="stable")[:TOP_TOKENS]
        total = max(self.flat_tokens, 1)
        per_story = {"mean": float(story.mean()) if story.size else 0.0,
                     "median": float(np.median(story)) if story.size else 0.0,
                     "p95": float(np.percentile(story, 95)) if story.size else 0.0,
                     "max": int(story.max()) if story.size else 0}
        longest_used = longest_token(tok, used)
        if longest_used is not None:
            longest_used["count"] = int(self.counts[longest_used["id"]])
        out = {
            "input": describe_inputs(m),
            "input_files": len(m["inputs"]),
            "input_bytes": int(sum(f["size"] for f in m["inputs"])),
            "bad_docs": int(sum(p.get("bad_docs", 0) for p in m["parts"])),
            "stories": int(story.size),
            "blank_rows": int(blank.sum()),
            "rows": int(rows),
            "tokens": int(self.flat_tokens),
            "story_tokens": int(story.sum()),
            "separator_tokens": int(rows - 1),
            "bytes": int(input_bytes),
            "bytes_per_token": input_bytes / total,
            "tokens_per_story": per_story,
            "share_over_512_tokens": float((story > LONG_STORY_TOKENS).mean()) if story.size else 0.0,
            "vocab": {"size": len(tok), "used": int(used.size), "never_used": int(never.size),
                      "never_used_sample": [int(i) for i in never[:NEVER_USED_SAMPLE]]},
            "top_tokens": [{"id": int(i), "text": _token_text(tok, i), "count": int(self.counts[i]),
                            "share": float(self.counts[i] / total)} for i in order if self.counts[i]],
            "longest_token_used": longest_used,
        }
        if self.unk is not None:
            n_unk = int(self.counts[self.unk])
            kept_used = int(np.count_nonzero(self.counts)) - (n_unk > 0)
            unknown_used = int(np.count_nonzero(self.unk_gpt2_counts))
            out["unk"] = {"id": int(self.unk), "tokens": n_unk, "rate": n_unk / total, "bytes": self.unk_bytes,
                          "byte_share": self.unk_bytes / max(input_bytes, 1)}
            out["kept_bytes_share"] = 1.0 - self.unk_bytes / max(input_bytes, 1)
            out["gpt2_tokens_used"] = {"distinct": kept_used + unknown_used, "kept": kept_used, "unknown": unknown_used}
        return out


def render(stats: dict) -> list[RenderableType]:
    """Rich tables of stats.json: one column per split, then the most frequent tokens."""
    splits = stats["splits"]
    names = list(splits)
    t = Table(title="storytok stats", title_justify="left")
    t.add_column("")
    for n in names:
        t.add_column(n, justify="right")

    def row(label, fn):
        t.add_row(label, *[fn(splits[n]) for n in names])

    row("stories", lambda s: f"{s['stories']:,}")
    row("blank rows", lambda s: f"{s['blank_rows']:,}")
    row("tokens", lambda s: f"{s['tokens']:,}")
    row("bytes", lambda s: f"{s['bytes']:,}")
    row("bytes / token", lambda s: f"{s['bytes_per_token']:.3f}")
    row("tokens/story mean", lambda s: f"{s['tokens_per_story']['mean']:.1f}")
    row("tokens/story median", lambda s: f"{s['tokens_per_story']['median']:.0f}")
    row("tokens/story p95", lambda s: f"{s['tokens_per_story']['p95']:.0f}")
    row("tokens/story max", lambda s: f"{s['tokens_per_story']['max']:,}")
    row(f"stories > {LONG_STORY_TOKENS} tokens", lambda s: f"{100 * s['share_over_512_tokens']:.2f}%")
    row("vocab used", lambda s: f"{s['vocab']['used']:,} / {s['vocab']['size']:,}")
    row("tokens never used", lambda s: f"{s['vocab']['never_used']:,}")
    row("longest token used", lambda s: repr(s["longest_token_used"]["text"]) if s["longest_token_used"] else "-")
    if any("unk" in splits[n] for n in names):   # gpt2-top10k
        row("<|unk|> rate", lambda s: f"{100 * s['unk']['rate']:.3f}%" if "unk" in s else "-")
        row("bytes covered by kept tokens", lambda s: f"{100 * s['kept_bytes_share']:.3f}%" if "unk" in s else "-")
        row("distinct GPT-2 tokens (unknown)", lambda s: f"{s['gpt2_tokens_used']['distinct']:,} "
            f"({s['gpt2_tokens_used']['unknown']:,})" if "unk" in s else "-")
    tables = [t]
    top = Table(title="most frequent tokens", title_justify="left")
    for n in names:
        top.add_column(f"{n}: token", justify="left")
        top.add_column("share", justify="right")
    depth = min(10, max(len(splits[n]["top_tokens"]) for n in names))
    for k in range(depth):
        cells = []
        for n in names:
            tt = splits[n]["top_tokens"]
            cells += [repr(tt[k]["text"]), f"{100 * tt[k]['share']:.2f}%"] if k < len(tt) else ["", ""]
        top.add_row(*cells)
    tables.append(top)
    lt = stats["tokenizer"]["longest_token"]
    kind = stats["tokenizer"].get("kind", "bpe")
    tables.append(Text(f"tokenizer: {'' if kind == 'bpe' else kind + ', '}{stats['tokenizer']['vocab_size']:,} tokens, longest "
                       f"{lt['text']!r} ({lt['bytes']} bytes)"))
    return tables
