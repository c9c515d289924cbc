"""storytok inside a user's own Ray Data pipeline: a callable class for `map_batches`.

    ds = ray.data.read_parquet("s3://bucket/fineweb/")
    ds = ds.map_batches(EncodeBatches, fn_constructor_args=("tokenizer_dir",),
                        batch_format="pyarrow", concurrency=8)
    ds.write_parquet("s3://bucket/fineweb-tokens/")

Ray Data constructs the class once per worker (an actor), so the tokenizer is loaded once
and its pre-token cache stays warm across batches; each batch's text column goes through
`Tokenizer.encode_arrow` straight from Arrow memory (no Python object per document) and
comes back as a `tokens` list<uint16> column beside the batch's other columns.
"""
from __future__ import annotations

import pyarrow as pa

from storytok.errors import StorytokError
from storytok.engines.ray.tokenizer_files import TokenizerFiles


class EncodeBatches:
    """`batch -> batch with a tokens column`, for `ray.data.Dataset.map_batches`.

    tokenizer  a tokenizer directory every worker can read (shared storage), or
               TokenizerFiles.read(directory) made on the driver (the files travel with it)
    column     the text column (string or large_string); output the new column's name
    keep_text  keep the text column beside the tokens (default: dropped)
    ordinary   True: special tokens inside a document are plain text (as corpora are encoded,
               tiktoken's encode_ordinary); False: they are matched
    workers    threads per call (default: the CPUs Ray gave this worker, at least 1)

    Batches may be pyarrow Tables (batch_format="pyarrow", zero-copy), pandas DataFrames or
    dicts of columns; a Table is returned. Nulls stay null.
    """

    def __init__(self, tokenizer, column: str = "text", output: str = "tokens", keep_text: bool = False,
                 ordinary: bool = True, workers: int | None = None):
        if isinstance(tokenizer, TokenizerFiles):
            self.tok = tokenizer.load(pipeline=False)
        else:
            from storytok.bpe.load import load_tokenizer_dir   # any tokenizer folder storytok reads
            self.tok = load_tokenizer_dir(tokenizer)
        self.column, self.output, self.keep_text, self.ordinary = column, output, keep_text, ordinary
        self.workers = workers or _assigned_cpus()

    def __call__(self, batch) -> pa.Table:
        table = _as_table(batch)
        if self.column not in table.column_names:
            present = ", ".join(repr(c) for c in table.column_names[:20]) or "none"
            raise StorytokError(f"EncodeBatches: no column {self.column!r} in the batch (columns: {present}); "
                                f"pass column=... naming the text column")
        tokens = self.tok.encode_arrow(table.column(self.column), workers=self.workers, ordinary=self.ordinary)
        out = table if self.keep_text else table.drop_columns([self.column])
        return out.append_column(self.output, tokens)


def _as_table(batch) -> pa.Table:
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, dict):
        return pa.table({k: v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(list(v))
                         for k, v in batch.items()})
    if type(batch).__name__ == "DataFrame":
        return pa.Table.from_pandas(batch, preserve_index=False)
    raise StorytokError(f"EncodeBatches: a batch of type {type(batch).__name__}; use batch_format=\"pyarrow\"")


def _assigned_cpus() -> int:
    try:
        import ray
        if ray.is_initialized():
            return max(int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)), 1)
    except Exception:   # noqa: BLE001  (outside a Ray worker: one thread)
        pass
    return 1
