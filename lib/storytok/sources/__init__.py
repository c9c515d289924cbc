"""What comes in: a split's input files (resolve: files, globs, directories, lists), read by
kind (text: .txt; jsonl: .jsonl/.ndjson; parquet; all but Parquet optionally .gz/.zst via
streams) into chunks the kernels take directly (chunks, arrow_docs), one stream per split
with resume positions (split); checks on what the user names (inputs), the downloader, and
the generated demo corpus."""
