"""storytok: byte-level BPE on Numba kernels, for turning TinyStories into uint16 tokens.

    from storytok import train_bpe, Tokenizer
"""
from storytok.errors import StorytokError, StorytokWarning

__all__ = ["train_bpe", "Tokenizer", "StorytokError", "StorytokWarning"]


def __getattr__(name):
    # Imported lazily so `import storytok` stays cheap for stage scripts that only print help.
    if name == "train_bpe":
        from storytok.bpe.train import train_bpe
        return train_bpe
    if name == "Tokenizer":
        from storytok.bpe.tokenizer import Tokenizer
        return Tokenizer
    raise AttributeError(name)
