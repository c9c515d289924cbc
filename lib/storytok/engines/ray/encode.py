"""make encode ENGINE=ray: a split's shards encoded as Ray tasks, parts recorded in order.

Same store, same outputs as the local engine (storytok.store.parquet_store): the arrays
`make stats` writes are byte for byte those of ENGINE=local. What differs is where parts
are cut. The local engine cuts a part after about part_bytes of encoded text, wherever the
stream of chunks has got to; here the parts are cut before anything is encoded, one part
per shard (storytok.sources.shards: a file, or a piece of a big .txt / .parquet file ending
where a document ends), so each task can write its part alone:

    shard k  --task-->  .part-0000k.parquet.<attempt>.partial   (on the worker, shared storage)
             --driver-> part-0000k.parquet + manifest entry     (renamed and recorded in order)

The driver holds the split's lock, renames finished parts into place and appends them to
the manifest strictly in shard order (a part finished early waits under its temporary
name), so the manifest always lists a prefix of the plan, exactly as the local engine's
does. A killed driver therefore resumes like the local engine: the recorded parts are kept
and the shards after them are encoded. The manifest records the engine and the shard plan;
a run of the other engine, or with another plan, starts the split over instead of mixing
parts. A worker killed mid-task is retried by Ray (its temporary file is left behind and
deleted when the split is finished); an error in a shard (bad UTF-8, malformed JSON) stops
the run with that error once the parts before the shard are recorded.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path

from storytok.bpe.batch import encode_chunks
from storytok.engines.ray.cluster import Cluster, connect, require_ray
from storytok.engines.ray.tokenizer_files import TokenizerFiles, worker_tokenizer
from storytok.errors import StorytokError
from storytok.fsutil import TMP_SUFFIX, os_error
from storytok.progress import ProgressBar
from storytok.sources.chunks import DEFAULT_CHUNK_BYTES
from storytok.sources.inputs import EOT
from storytok.sources.shards import DEFAULT_SHARD_BYTES, Shard, plan_shards, shard_chunks
from storytok.sources.split import Source
from storytok.sources.uri import is_uri
from storytok.store.lock import split_lock
from storytok.store.parquet_store import (EncodeReport, finish_split, open_split, part_name, remove_unlisted,
                                          split_identity, unk_id_of, write_manifest, write_part)

MAX_RETRIES = 3              # Ray's retries of a task whose worker process died
FAULT_ENV = "STORYTOK_RAY_FAULT"   # tests only: "kill:<shard index>:<marker file>" or "sleep:<s>" (_fault_hook)


@dataclasses.dataclass
class RayEncodeReport(EncodeReport):
    shards: int = 0
    cluster: str = ""
    task_cpu_seconds: float = 0.0   # CPU of the tasks that made this run's parts (their worker processes)


def encode_split(tok, tokenizer_dir, source, split_dir: Path, *, split: str, field: str = "text",
                 skip_bad_docs: bool = False, workers: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 shard_bytes: int = DEFAULT_SHARD_BYTES, progress: bool = True,
                 cluster: Cluster | None = None) -> RayEncodeReport:
    """Encode `source` with `tok` (loaded from `tokenizer_dir`, whose files travel to the
    workers) into Parquet parts under `split_dir`, one per shard, on Ray; resumes like the
    local engine. `cluster` defaults to connect(workers) (RAY_ADDRESS, or a local Ray)."""
    src = source if isinstance(source, Source) else Source.of(source, field=field, skip_bad_docs=skip_bad_docs)
    split_dir = Path(split_dir).resolve()
    files = TokenizerFiles.read(tokenizer_dir, fingerprint=tok.fingerprint())
    cluster = cluster or connect(workers)
    with split_lock(split_dir, f"encode {split} (ENGINE=ray)"):
        return _encode_locked(tok, files, src, split_dir, split, chunk_bytes, shard_bytes, progress, cluster)


def _encode_locked(tok, files: TokenizerFiles, src: Source, split_dir: Path, split: str, chunk_bytes: int,
                   shard_bytes: int, progress: bool, cluster: Cluster) -> RayEncodeReport:
    ray = require_ray()
    base_tok = tok if unk_id_of(tok) is None else tok.gpt2
    shards = plan_shards(src, base_tok._matcher, shard_bytes)
    want = split_identity(tok, src, split, chunk_bytes=chunk_bytes, engine="ray", shard_bytes=int(shard_bytes),
                          shards=[s.as_list() for s in shards])
    report = RayEncodeReport(split, src.describe(), src.input_bytes, files=len(src.files), shards=len(shards),
                             cluster=cluster.describe())
    manifest = open_split(split_dir, want, report)
    if manifest is not None:
        parts = manifest["parts"]
        fits = [p["start"] == list(s.start_position) and p["end"] == list(s.end_position) for p, s in zip(parts, shards)]
        if not all(fits):   # cannot happen (the plan is part of the manifest's identity); never keep a misfit
            del parts[fits.index(False):]
            write_manifest(split_dir, manifest)
            remove_unlisted(split_dir, parts)
        try:
            report.encoded_bytes, report.task_cpu_seconds = _run(ray, files, _absolute(src), shards, split_dir,
                                                                 manifest, want, chunk_bytes, progress, cluster)
        finally:
            _count(report, manifest["parts"])
        finish_split(split_dir, manifest, report)
    return report


def _count(report: EncodeReport, parts: list[dict]) -> None:
    report.parts = len(parts)
    report.rows = sum(p["rows"] for p in parts)
    report.tokens = sum(p["tokens"] for p in parts)
    report.bad_docs = sum(p.get("bad_docs", 0) for p in parts)


def _absolute(src: Source) -> Source:
    """The source with absolute local paths: workers do not share the driver's working directory."""
    files = [f if is_uri(f.path) else dataclasses.replace(f, path=os.path.abspath(f.path)) for f in src.files]
    return dataclasses.replace(src, files=files, spec=None)


def _run(ray, files: TokenizerFiles, src: Source, shards: list[Shard], split_dir: Path, manifest: dict,
         want: dict, chunk_bytes: int, progress: bool, cluster: Cluster) -> tuple[int, float]:
    """Submit the shards after the recorded parts, at most a window ahead of the first one not
    recorded yet; rename and record parts in order as tasks finish. Returns the text bytes
    read and the tasks' CPU seconds."""
    parts = manifest["parts"]
    todo = deque(shards[len(parts):])
    meta = {"split": want["split"], "tokenizer": want["tokenizer"]}
    fault = os.environ.get(FAULT_ENV) or None
    task = ray.remote(_encode_shard).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False,
                                             name="storytok-encode-shard")
    files_ref, src_ref = ray.put(files), ray.put(src)
    window = max(2 * cluster.cpus, 2)
    pending: dict = {}            # ObjectRef -> Shard
    done: dict[int, dict] = {}    # shard index -> the task's result, until its turn to be recorded
    failed: tuple | None = None   # (shard, exception): the first shard (in order) that failed
    text, cpu = 0, 0.0
    bar = ProgressBar(len(shards), f"encode {want['split']} on Ray ({cluster.describe()})", unit="shards",
                      enabled=progress)
    try:
        with bar:
            bar.update(len(parts))
            while pending or (todo and failed is None):
                while todo and failed is None and todo[0].index < len(parts) + window:
                    s = todo.popleft()
                    pending[task.remote(files_ref, src_ref, s, str(split_dir), meta, chunk_bytes, fault)] = s
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    s = pending.pop(ref)
                    try:
                        done[s.index] = ray.get(ref)
                    except Exception as e:   # noqa: BLE001  (a task's error, or a cancelled task)
                        if failed is None or s.index < failed[0].index:
                            failed = (s, e)
                            for r, later in pending.items():
                                if later.index > s.index:
                                    ray.cancel(r)
                while len(parts) in done and (failed is None or len(parts) < failed[0].index):
                    r = done.pop(len(parts))
                    _publish(split_dir, r, manifest)
                    text += r["text"]
                    cpu += r["cpu"]
                    bar.update(len(parts))
            if failed is not None:   # raised inside the bar: no closing progress line after the error
                raise _task_error(ray, src, *failed) from None
    except BaseException:
        for r in pending:
            ray.cancel(r, force=True)
        remove_unlisted(split_dir, parts)
        raise
    return text, cpu


def _publish(split_dir: Path, result: dict, manifest: dict) -> None:
    """A finished shard's part renamed into place, then recorded (the manifest lists it)."""
    entry = result["entry"]
    final = split_dir / entry["file"]
    try:
        os.replace(split_dir / result["tmp"], final)
    except FileNotFoundError:   # the task wrote it on its own node's disk, not where the driver looks
        raise StorytokError(f"{split_dir / result['tmp']}: a Ray task wrote this part but the driver does not "
                            f"see it; OUT must be a directory every Ray node sees at the same path (shared "
                            f"storage), finished parts are kept") from None
    except OSError as e:
        raise os_error(e, final, "finished parts are kept; fix the output directory and run `make encode` "
                                 "again to resume") from None
    manifest["parts"].append(entry)
    write_manifest(split_dir, manifest)


def _task_error(ray, src: Source, shard: Shard, e: Exception) -> BaseException:
    """One line for a shard that failed: the task's own StorytokError (naming the file and
    the place), or what Ray says when the task could not finish at all."""
    cause = getattr(e, "cause", None) if isinstance(e, ray.exceptions.RayTaskError) else None
    if isinstance(cause, StorytokError):
        return StorytokError(str(cause))
    if cause is not None:
        return cause   # a bug: keep its traceback
    where = f"{src.files[shard.file].path} (shard {shard.index}, from {shard.start_position[1]:,})"
    reason = " ".join(str(e).split())[:300]
    return StorytokError(f"{where}: its Ray task failed {MAX_RETRIES + 1} times ({type(e).__name__}: {reason}); "
                         f"finished parts are kept, run `make encode ENGINE=ray` again to resume")


def warm_up(tok, tokenizer_dir, cluster: Cluster) -> list[int]:
    """A worker process per CPU started and ready (kernels loaded, the tokenizer loaded and
    used once on a small text, a part written): what a job's first tasks pay, paid up front,
    so a benchmark can time the encoding alone. Returns the workers' process ids."""
    ray = require_ray()
    files = ray.put(TokenizerFiles.read(tokenizer_dir, fingerprint=tok.fingerprint()))
    task = ray.remote(_warm).options(num_cpus=1, name="storytok-warm-up")
    return ray.get([task.remote(files) for _ in range(cluster.cpus)])


# ---- on the workers ----------------------------------------------------------------------------

def _warm(files: TokenizerFiles) -> int:
    tok = worker_tokenizer(files)
    base_tok = tok if unk_id_of(tok) is None else tok.gpt2
    with tempfile.TemporaryDirectory(prefix="storytok-warm-") as d:
        path = Path(d) / "warm.txt"
        path.write_text(("Once upon a time, a girl named Lily saw a big red ball. \"Can I play?\" she asked.\n"
                         + EOT) * 200, encoding="utf-8")
        src = Source.of(str(path))
        shard = plan_shards(src, base_tok._matcher)[0]
        meta = {"split": "warm-up", "tokenizer": {"fingerprint": tok.fingerprint(), "eot_id": tok.special_ids[EOT]}}
        _encode_shard(files, src, shard, d, meta, DEFAULT_CHUNK_BYTES, None)
    time.sleep(0.2)   # hold this worker, so the other warm-up tasks start workers of their own
    return os.getpid()


def _encode_shard(files: TokenizerFiles, src: Source, shard: Shard, split_dir: str, meta: dict,
                  chunk_bytes: int, fault: str | None) -> dict:
    """One shard encoded into its part, left under a temporary name of this attempt's own."""
    cpu = time.process_time()
    tok = worker_tokenizer(files)
    base_tok = tok if unk_id_of(tok) is None else tok.gpt2
    final = Path(split_dir) / part_name(shard.index)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")
    chunks = shard_chunks(src, shard, base_tok._matcher, chunk_bytes=chunk_bytes)
    pieces = encode_chunks(base_tok, chunks, sep_id=base_tok.special_ids[EOT], workers=1)
    if fault:
        pieces = _fault_hook(pieces, fault, shard)
    entry, text = write_part(tok, pieces, final, shard.start_position, shard.end_position, meta, tmp=tmp,
                             publish=False)
    return {"entry": entry, "tmp": tmp.name, "text": text, "cpu": time.process_time() - cpu}


def _fault_hook(pieces, fault: str, shard: Shard):
    """Tests only (FAULT_ENV). "kill:<shard>:<marker>": the first attempt at that shard kills
    its own worker process right after its first piece went to the part writer, once (the
    marker file records that it happened), so Ray's retry of a lost worker is what finishes
    it. "sleep:<seconds>": every task sleeps that long after each piece (a slow cluster, so a
    test can kill the driver mid-run)."""
    kind, _, arg = fault.partition(":")
    for k, piece in enumerate(pieces):
        yield piece
        if kind == "sleep":
            time.sleep(float(arg))
        elif kind == "kill" and k == 0:
            index, marker = arg.split(":", 1)
            if int(index) == shard.index and not os.path.exists(marker):
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
