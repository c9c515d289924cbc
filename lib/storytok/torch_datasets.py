"""The PyTorch adapters under their first public name; they live in storytok.datasets.torch."""
from storytok.datasets.torch import *  # noqa: F401,F403
from storytok.datasets.torch import __all__  # noqa: F401
