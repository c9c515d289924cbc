"""make bench: storytok against gigatoken, tiktoken, Hugging Face tokenizers and rustbpe.

Not part of the library: the harness lives beside it, and only the storytok adapter
(`bench.peers.storytok`) imports storytok. The parts:

    session.py       one run: its inputs' facts, what jobs need made first, runs, verdicts
    harness.py       jobs, runs in fresh subprocesses, rounds, medians, load, machine facts
    jobs.py          which jobs a run has (per corpus, per group)
    corpora.py       the generated corpora, their distinct pre-token counts, JSONL/Parquet copies
    verdicts.py      id checks, issue targets, full-size estimates
    report.py        the rich table, the Markdown for README/docs
    worker.py        the subprocess entry point (`python -m bench.worker`)
    common.py        what workers share: timing, reading stories, hashing ids, peak RSS
    peers/<tool>.py  one adapter per tool: its train / encode / cold-start workers

Importing this package imports nothing heavy: workers must start clean.
"""
