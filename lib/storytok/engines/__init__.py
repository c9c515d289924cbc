"""Where the work runs: `local` (the default) or `ray` (the optional extra `storytok[ray]`).

local   threads in one process: storytok.store.parquet_store.encode_split (make encode) and
        storytok.bpe.train.train_bpe (make tokenizer); nothing here.
ray     storytok.engines.ray: a split's shards (storytok.sources.shards) as Ray tasks on a
        cluster, with the same outputs as local: a part per shard in the same store, and
        pre-token counts combined by hash partition. Imports Ray only when used.

Both engines meet the library at the same seams: the chunk readers (storytok.sources), the
encoder (storytok.bpe.batch.encode_chunks), the part writer and manifest
(storytok.store.parquet_store), and pre-token counts -> merges (storytok.engines.counts).
"""
from __future__ import annotations

from storytok.errors import StorytokError

ENGINES = ("local", "ray")


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise StorytokError(f"ENGINE={name}: unknown engine; choose {' or '.join(ENGINES)}")
    return name
