"""Tokenizer: a thin, exact Python API over the encode kernel (tiktoken's model, on Numba).

It accepts any byte-level BPE: storytok's own ids or GPT-2's. Python objects are turned
into arrays once, at construction: a byte -> id table, a merge table (pair -> rank, new
id), the token bytes for decoding. All threads share one cache of encoded pre-tokens,
held within a byte budget (bpe.cache_budget).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storytok.bpe import gpt2_files, tiktoken_files
from storytok.sources.chunks import (DEFAULT_CHUNK_BYTES, DOC_END, check_text_file, check_utf8, iter_chunks,
                                     safe_cut_bytes)
from storytok.errors import StorytokError
from storytok.bpe.cache_budget import DEFAULT_CACHE_BYTES, CachePool
from storytok.kernels.bpe_encode import build_merge_table, encode_segments
from storytok.kernels.encode_cache import ID_LIMIT, STOP
from storytok.parallel import ordered_map, resolve_workers
from storytok.pretokenize.pretokenizer import scanner_classes, text_buffer
from storytok.progress import ProgressBar
from storytok.pretokenize.specials import SpecialMatcher

DECODE_BLOCK = 1 << 20
STREAM_BATCH = 1 << 16


@dataclass
class EncodedChunk:
    """The tokens of file bytes [byte_start, byte_end); chunks end right after a special token."""
    byte_start: int
    byte_end: int
    tokens: np.ndarray


class Tokenizer:
    def __init__(self, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
                 special_tokens: list[str] | None = None, *, cache_bytes: int = DEFAULT_CACHE_BYTES):
        """cache_bytes: memory for the encoder's caches of pre-token ids, all threads together
        (see `cache_bytes`)."""
        self.vocab = {int(i): bytes(b) for i, b in vocab.items()}
        self.merges = [(bytes(a), bytes(b)) for a, b in merges]
        self._matcher = SpecialMatcher(list(special_tokens or []))
        self.special_tokens = self._matcher.tokens
        ids = {}
        for i, b in sorted(self.vocab.items()):
            ids.setdefault(b, i)
        self.special_ids: dict[str, int] = {}
        for s in self.special_tokens:
            b = s.encode("utf-8")
            if b not in ids:
                ids[b] = max(self.vocab, default=-1) + 1
                self.vocab[ids[b]] = b
            self.special_ids[s] = ids[b]
        missing = [x for x in range(256) if bytes([x]) not in ids]
        if missing:
            raise StorytokError(f"vocabulary lacks {len(missing)} single byte(s) (e.g. {bytes([missing[0]])!r}); "
                                "a byte-level BPE needs all 256")
        self._byte_ids = np.array([ids[bytes([x])] for x in range(256)], np.int64)
        left, right, new = [], [], []
        for rank, (a, b) in enumerate(self.merges):
            try:
                left.append(ids[a]), right.append(ids[b]), new.append(ids[a + b])
            except KeyError:
                raise StorytokError(f"merge {rank} ({a!r}, {b!r}) uses or makes a token that is not in the vocabulary") from None
        max_id = max(self.vocab)
        if max_id >= ID_LIMIT or len(self.merges) >= ID_LIMIT:
            raise StorytokError(f"ids up to {max_id} and {len(self.merges)} merges: the encoder supports "
                                f"ids and merges below {ID_LIMIT:,}")
        self._merge_table = build_merge_table(np.array(left, np.int64), np.array(right, np.int64),
                                              np.array(new, np.int64), self._byte_ids)
        self._special_index_to_id = np.array([self.special_ids[s] for s in self._matcher.tokens], np.int64)
        self._classes = scanner_classes()
        self._cache = CachePool(cache_bytes)
        self._tok_len = np.zeros(max_id + 1, np.int64)
        self._tok_known = np.zeros(max_id + 1, bool)
        self._tok_off = np.zeros(max_id + 1, np.int64)
        for i, b in self.vocab.items():
            self._tok_len[i] = len(b)
            self._tok_known[i] = True
        np.cumsum(self._tok_len[:-1], out=self._tok_off[1:])
        self._tok_bytes = np.frombuffer(b"".join(self.vocab.get(i, b"") for i in range(max_id + 1)), np.uint8)

    # ---- construction from / to files -------------------------------------------------
    @classmethod
    def from_files(cls, vocab_path, merges_path, special_tokens: list[str] | None = None) -> "Tokenizer":
        """A tokenizer from GPT-2 format vocab.json + merges.txt (GPT-2's own included)."""
        vocab = gpt2_files.read_vocab_json(vocab_path)
        merges = gpt2_files.read_merges_txt(merges_path)
        try:
            return cls(vocab, merges, special_tokens)
        except StorytokError as e:
            raise StorytokError(f"{os.fspath(vocab_path)} + {os.path.basename(os.fspath(merges_path))}: {e}") from None

    @classmethod
    def from_dir(cls, directory) -> "Tokenizer":
        """The tokenizer in a folder of any kind storytok reads (what save wrote, GPT-2's files,
        a Hugging Face tokenizer.json, a tokenizer.tiktoken, a gpt2-top10k folder: then a
        storytok.bpe.gpt2_top10k.CompactTokenizer). The kinds are decided in one place,
        storytok.bpe.load, which imports this module (hence the import here, not at the top)."""
        from storytok.bpe.load import load_tokenizer_dir
        return load_tokenizer_dir(directory)

    @classmethod
    def from_tiktoken(cls, path, special_tokens=None) -> "Tokenizer":
        """A tiktoken rank file (`base64(token) rank` lines). The merges are the splits
        tiktoken's own BPE finds for each token from lower ranks, so the ids equal tiktoken's.
        special_tokens: a list (ids follow the last rank, as <|endoftext|> in tiktoken's gpt2)
        or a dict {token: id}."""
        vocab, merges, specials = tiktoken_files.read_tiktoken(path, special_tokens)
        try:
            return cls(vocab, merges, specials)
        except StorytokError as e:
            raise StorytokError(f"{os.fspath(path)}: {e}") from None

    def save(self, directory) -> None:
        """vocab.json + merges.txt (GPT-2 format), tokenizer.json (Hugging Face) and
        tokenizer.tiktoken (tiktoken's rank file). A tokenizer tiktoken cannot express (ids
        not in merge order, say) gets no tokenizer.tiktoken and a StorytokWarning saying why."""
        gpt2_files.write_tokenizer_files(directory, self.vocab, self.merges, self.special_ids)
        tiktoken_files.save_rank_file(directory, self)

    def to_tiktoken(self, name: str = "storytok"):
        """This tokenizer as a tiktoken.Encoding (GPT-2 pattern, specials with their ids), or
        one StorytokError line: tiktoken not installed, or ids it cannot express. Encode with
        allowed_special="all" for storytok's behaviour (tiktoken refuses specials by default)."""
        return tiktoken_files.to_encoding(self, name)

    def __len__(self) -> int:
        return len(self.vocab)

    def fingerprint(self) -> str:
        """sha256 of vocab, merges and specials: names this exact tokenizer in manifests."""
        h = hashlib.sha256()
        for i, b in sorted(self.vocab.items()):
            h.update(i.to_bytes(4, "little") + len(b).to_bytes(4, "little") + b)
        for a, b in self.merges:
            h.update(len(a).to_bytes(4, "little") + a + len(b).to_bytes(4, "little") + b)
        for s in self.special_tokens:
            h.update(b"\x00special\x00" + s.encode("utf-8"))
        return h.hexdigest()

    def token_byte_lengths(self) -> np.ndarray:
        """Byte length of every id (0 for unused ids), for byte counts straight from token arrays."""
        return self._tok_len.copy()

    # ---- encoding ---------------------------------------------------------------------
    def _encode_text(self, buf, words, start: int, end: int, matches=None) -> np.ndarray:
        """ids of buf[start:end] (valid UTF-8 in a padded buffer), through the shared cache.

        matches are the special tokens in that range if already known (a file chunk's).
        """
        if matches is None:
            matches = self._matcher.find(buf, words, start, end)
        starts, ends, after = self._matcher.segments(matches, start, end)
        return self._encode_segments(buf, words, starts, ends, after)

    def _encode_segments(self, buf, words, starts, ends, after, doc_end: int = -1) -> np.ndarray:
        """ids of the text segments buf[starts[k]:ends[k]] (valid UTF-8 in a padded buffer),
        each followed by what after[k] names: a special token (its index in
        self.special_tokens), DOC_END (the id doc_end: the pipeline's separator, or the batch
        API's end-of-document marker) or NO_SPECIAL. The one seam through which the batch API
        and the pipeline (storytok.bpe.batch) reach the encoder and its shared cache
        (self._cache: one table for all threads, bpe.cache_budget).
        """
        special = np.full(after.shape, -1, np.int64)
        is_special = after >= 0
        if is_special.any():
            special[is_special] = self._special_index_to_id[after[is_special]]
        special[after == DOC_END] = doc_end
        if len(starts) == 0:
            return np.empty(0, self.token_dtype())
        need = int((ends - starts).sum()) + len(starts)   # at most one id per byte, plus one after each segment
        pool = self._cache
        state = pool.acquire()
        try:
            out = state.output(need, self.token_dtype())
            n, k, pos = 0, 0, int(starts[0])
            while True:
                table, tab, generation = pool.enter()
                try:
                    n, k, pos = encode_segments(
                        buf, words, starts, ends, special, self._classes, self._byte_ids, *self._merge_table,
                        table, tab, state.ts, state.lrows, state.larena, state.lmeta, state.lids, out, k, pos, n)
                finally:
                    pool.leave()
                if k == len(starts):
                    break
                if state.ts[STOP]:  # the shared table is at its limit: grow it or sweep it
                    pool.make_room(generation)
            # a copy the size of the ids: the state's buffer (one slot per input byte) is reused,
            # and fresh pages for it on every call would cost more than the copy
            return out[:n].copy()
        finally:
            pool.release(state)

    @property
    def cache_bytes(self) -> int:
        """Memory the encoder's caches may use, all threads together (default 256 MB).

        The encoder caches the ids of the pre-tokens it has seen in one table that all
        threads share (plus a small table per thread for pre-tokens over 15 bytes). The
        table grows with the distinct words of the input while the budget allows; then,
        when full, it keeps the entries hit since its previous clean-up and drops the rest
        (or starts afresh when nearly all were hit). Memory never exceeds the budget,
        whatever the input. 0 turns the caches off. Setting it drops the caches.
        """
        return self._cache.budget

    @cache_bytes.setter
    def cache_bytes(self, value: int) -> None:
        if value < 0:
            raise StorytokError(f"cache_bytes must be >= 0, got {value}")
        self._cache = CachePool(int(value))

    def cache_stats(self) -> dict[str, int]:
        """The encoder caches' counters summed over threads: hits, misses, entries, sweeps, wipes, bytes."""
        return self._cache.stats()

    def _encode_bytes(self, data: bytes, end: int | None = None) -> np.ndarray:
        buf, words = text_buffer(data)
        return self._encode_text(buf, words, 0, len(data) if end is None else end)

    @staticmethod
    def _utf8(text: str) -> bytes:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: replaced by U+FFFD, as tiktoken does
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")

    def _encode_str_all_cores(self, text: str, workers: int | None = None) -> np.ndarray:
        """The ids of text, on all cores when it is large enough to be worth splitting."""
        from storytok.bpe import batch
        return batch.encode_text(self, text, workers=workers)

    def encode(self, text: str) -> list[int]:
        return self._encode_str_all_cores(text).tolist()

    def encode_to_numpy(self, text: str, dtype=np.uint16) -> np.ndarray:
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer) and len(self._tok_len) - 1 > np.iinfo(dtype).max:
            raise StorytokError(f"ids go up to {len(self._tok_len) - 1}, which does not fit {dtype.name}")
        return self._encode_str_all_cores(text).astype(dtype, copy=False)

    def encode_batch(self, texts, *, workers: int | None = None) -> list[np.ndarray]:
        """One id array per text, each equal to encode_to_numpy(text) (specials matched), on
        all cores; no Python int per token (storytok.bpe.batch)."""
        from storytok.bpe import batch
        return batch.encode_batch(self, texts, workers=workers)

    def encode_arrow(self, array, *, workers: int | None = None, ordinary: bool = True):
        """Arrow strings in, a pyarrow list<uint16> array out (list<int32> past 65,536 ids),
        a row per document; ordinary=True leaves special tokens in the text unmatched
        (storytok.bpe.batch)."""
        from storytok.bpe import batch
        return batch.encode_arrow(self, array, workers=workers, ordinary=ordinary)

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """encode("".join(iterable)), lazily: memory stays bounded by the largest piece.

        Pieces are gathered up to STREAM_BATCH bytes before a cut is looked for, so a file
        read line by line costs one kernel call per batch, not per line.
        """
        pending = b""
        gathered: list[bytes] = []
        size = 0
        tried = 0  # a cut was last looked for (and not found) at this length: wait for 2x before looking again
        for piece in iterable:
            data = self._utf8(piece)
            gathered.append(data)
            size += len(data)
            if size < STREAM_BATCH:
                continue
            pending += b"".join(gathered)
            gathered, size = [], 0
            if len(pending) < 2 * tried:
                continue
            cut = safe_cut_bytes(pending, self._matcher)
            if cut:
                yield from self._encode_bytes(pending, cut).tolist()
                pending = pending[cut:]
                tried = 0
            else:
                tried = len(pending)
        pending += b"".join(gathered)
        if pending:
            yield from self._encode_bytes(pending).tolist()

    def token_dtype(self) -> np.dtype:
        return np.dtype(np.uint16) if len(self._tok_len) <= 65536 else np.dtype(np.int32)

    def encode_file(self, path, *, workers: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                    start_byte: int = 0, progress: bool = False) -> Iterator[EncodedChunk]:
        """Encode a UTF-8 file on all cores, chunk by chunk, in file order.

        Chunks end right after a special token, so they encode independently; start_byte
        must be a previous chunk's byte_end (resuming yields the same later chunks).
        """
        size = check_text_file(path)

        def encode_chunk(chunk):
            check_utf8(path, chunk)
            ids = self._encode_text(chunk.buf, chunk.words, 0, chunk.length, chunk.matches)
            return EncodedChunk(chunk.offset, chunk.offset + chunk.length, ids)

        with ProgressBar(size, f"encoding {os.path.basename(os.fspath(path))}", unit="bytes", enabled=progress) as bar:
            bar.update(start_byte)
            for encoded in ordered_map(encode_chunk, iter_chunks(path, self._matcher, chunk_bytes, start_byte),
                                       resolve_workers(workers)):
                bar.update(encoded.byte_end)
                yield encoded

    # ---- decoding ---------------------------------------------------------------------
    def decode_bytes(self, ids) -> bytes:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self._tok_len) or not self._tok_known[ids].all()):
            bad = ids[(ids < 0) | (ids >= len(self._tok_len))]
            bad = bad[0] if bad.size else ids[~self._tok_known[ids]][0]
            raise StorytokError(f"cannot decode id {int(bad)}: not in the vocabulary")
        out = bytearray()
        for k in range(0, ids.size, DECODE_BLOCK):
            block = ids.ravel()[k:k + DECODE_BLOCK].astype(np.int64)
            lens = self._tok_len[block]
            starts = np.zeros(len(block), np.int64)
            np.cumsum(lens[:-1], out=starts[1:])
            gather = np.repeat(self._tok_off[block] - starts, lens) + np.arange(lens.sum())
            out += self._tok_bytes[gather].tobytes()
        return bytes(out)

    def decode(self, ids) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")
