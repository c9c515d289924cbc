"""make tokenizer ENGINE=ray: pre-tokens counted on the cluster, merges on the driver.

Counting is a map-reduce over the split's shards (storytok.sources.shards):

    map      a task per shard counts its pre-tokens (storytok.bpe.train.count_chunks: the
             same kernels as train_bpe) and cuts its distinct pre-tokens into P parts by
             a hash of their bytes; the P parts are P objects in Ray's object store, each
             three compact arrays (bytes, starts, counts)
    combine  for each part p, tasks sum the p-th parts of up to FAN_IN tasks (pyarrow's hash
             aggregation), then the p-th parts of those, ... down to one per p; a pre-token
             is in one part only, so each combine sees all of its counts and none of another's
    driver   gets the P combined parts (disjoint), puts them side by side and runs the merge
             loop (storytok.engines.counts.merges_from_counts: the same loop as train_bpe)

So the driver never holds more than the distinct pre-tokens once, however many shards
counted them, and the combining runs on the cluster, P ways in parallel. Counts do not
depend on how the text was cut or counted, so the merges are those of train_bpe.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import time

from storytok.bpe.train import COUNT_CHUNK_BYTES, PretokenCounts, check_vocab_size, count_chunks
from storytok.engines.counts import combine_counts, concat_counts, empty, merges_from_counts, partition_counts
from storytok.engines.ray.cluster import Cluster, connect, require_ray
from storytok.errors import StorytokError
from storytok.progress import ProgressBar
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.shards import DEFAULT_SHARD_BYTES, Shard, plan_shards, shard_chunks
from storytok.sources.split import Source, is_document_iterable
from storytok.sources.uri import is_uri

FAN_IN = 16
MAX_RETRIES = 3



def train_bpe(source, vocab_size: int, special_tokens: list[str] | None = None, workers: int | None = None,
              progress: bool = False, *, field: str = "text", skip_bad_docs: bool = False,
              shard_bytes: int = DEFAULT_SHARD_BYTES, cluster: Cluster | None = None, stats: dict | None = None):
    """storytok.train_bpe with the counting on Ray: (vocab, merges), the same as train_bpe's.
    `source` names files (a path, glob, directory, URI or a list of them); `workers` sizes a
    local Ray when there is no RAY_ADDRESS; `stats` (a dict) gets count_pretokens' figures."""
    specials = check_vocab_size(vocab_size, special_tokens)
    src = _files_of(source, field, skip_bad_docs)
    counts = count_pretokens(src, specials, workers=workers, progress=progress, shard_bytes=shard_bytes,
                             cluster=cluster, stats=stats)
    return merges_from_counts(counts, vocab_size, specials, progress, source=src.describe())


def _files_of(source, field: str, skip_bad_docs: bool) -> Source:
    if isinstance(source, Source):
        return source
    if is_document_iterable(source):
        raise StorytokError("ENGINE=ray counts files (paths, globs, directories or URIs), not an iterable of "
                            "documents; write them to JSONL or Parquet shards, or use the local engine")
    src = Source.of(source, field=field, skip_bad_docs=skip_bad_docs, unknown_as_text=True)
    src.check()
    return src


def count_pretokens(source, special_tokens: list[str] | None = None, *, field: str = "text",
                    skip_bad_docs: bool = False, workers: int | None = None, progress: bool = False,
                    shard_bytes: int = DEFAULT_SHARD_BYTES, partitions: int | None = None,
                    cluster: Cluster | None = None, stats: dict | None = None) -> PretokenCounts:
    """Every distinct pre-token of `source` with its count (storytok.bpe.train.PretokenCounts),
    counted on Ray (see the module docstring); `partitions` (default: the cluster's CPUs,
    at most one per shard) is P. `stats`, if given, gets shards, partitions and the
    counting tasks' CPU seconds."""
    ray = require_ray()
    src = _files_of(source, field, skip_bad_docs)
    matcher = SpecialMatcher(list(special_tokens or []))
    cluster = cluster or connect(workers)
    shards = plan_shards(src, matcher, shard_bytes)
    n_parts = max(1, partitions or min(cluster.cpus, len(shards)))
    count = ray.remote(_count_shard).options(num_returns=n_parts + 1, max_retries=MAX_RETRIES,
                                             retry_exceptions=False, name="storytok-count-shard")
    combine = ray.remote(_combine).options(max_retries=MAX_RETRIES, name="storytok-combine-counts")
    src_ref = ray.put(_absolute(src))
    summaries, columns = {}, [[] for _ in range(n_parts)]
    for s in shards:
        refs = count.remote(src_ref, s, matcher.tokens, COUNT_CHUNK_BYTES, n_parts)
        summaries[refs[-1]] = s
        for p in range(n_parts):
            columns[p].append(refs[p])
    combined = [_tree(combine, col) for col in columns]
    del columns      # the combines hold the map outputs now; each is freed once combined
    with ProgressBar(len(shards), f"counting pre-tokens on Ray ({cluster.describe()})", unit="shards",
                     enabled=progress) as bar:
        waiting, cpu = list(summaries), 0.0
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            try:
                cpu += ray.get(ready[0])["cpu"]
            except Exception as e:   # noqa: BLE001
                for r in waiting + combined:
                    ray.cancel(r)
                raise _task_error(ray, src, summaries[ready[0]], e) from None
            bar.advance(1)
    counts = concat_counts(ray.get(combined))
    if stats is not None:
        stats.update(shards=len(shards), partitions=n_parts, task_cpu_seconds=cpu, distinct=len(counts))
    return counts


def _tree(combine, refs: list):
    """One object combining all of refs, by tasks of at most FAN_IN inputs each."""
    while len(refs) > 1:
        refs = [combine.remote(*refs[k:k + FAN_IN]) for k in range(0, len(refs), FAN_IN)]
    return refs[0]


def _absolute(src: Source) -> Source:
    files = [f if is_uri(f.path) else dataclasses.replace(f, path=os.path.abspath(f.path)) for f in src.files]
    return dataclasses.replace(src, files=files, spec=None)


def _task_error(ray, src: Source, shard: Shard, e: Exception) -> BaseException:
    cause = getattr(e, "cause", None) if isinstance(e, ray.exceptions.RayTaskError) else None
    if isinstance(cause, StorytokError):
        return StorytokError(str(cause))
    if cause is not None:
        return cause
    reason = " ".join(str(e).split())[:300]
    return StorytokError(f"{src.files[shard.file].path} (shard {shard.index}): its Ray task failed "
                         f"{MAX_RETRIES + 1} times ({type(e).__name__}: {reason}); run `make tokenizer` again")


# ---- on the workers ----------------------------------------------------------------------------

def _count_shard(src: Source, shard: Shard, specials: list[str], chunk_bytes: int, n_parts: int):
    """A shard's pre-token counts cut into n_parts by hash, and a small summary last."""
    cpu = time.process_time()
    matcher = SpecialMatcher(specials)
    chunks = shard_chunks(src, shard, matcher, chunk_bytes=chunk_bytes)
    first = next(chunks, None)      # a shard without documents (an empty JSONL file) counts nothing
    counts = empty() if first is None else count_chunks(itertools.chain([first], chunks), workers=1)
    parts = partition_counts(counts, n_parts)
    summary = {"shard": shard.index, "distinct": len(counts), "bytes": shard.size, "cpu": time.process_time() - cpu}
    return (*parts, summary)


def _combine(*parts: PretokenCounts) -> PretokenCounts:
    return combine_counts(list(parts))
