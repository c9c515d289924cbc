"""Byte-level BPE: training (`train_bpe`), the `Tokenizer`, and its files (GPT-2
vocab.json/merges.txt, Hugging Face tokenizer.json, the gpt2-top10k kind)."""
