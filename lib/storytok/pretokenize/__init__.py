"""Pre-tokenization: the GPT-2 pattern (`regex` as the reference, the Numba scanner as
what runs), the code point class table behind it, and special-token splitting."""
