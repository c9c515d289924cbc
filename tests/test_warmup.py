"""`make setup`'s warmup leaves nothing to compile: after it ran (its halves in two
processes) on an empty Numba cache, a fresh process training and encoding compiles no
kernel, it only loads them."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = r"""
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
from storytok import warmup
warmup.warm_train(); warmup.warm_encode(); warmup.warm_shared()
print("COMPILED", sorted(set(compiled)))
"""


@pytest.mark.slow
def test_parallel_warmup_caches_every_kernel(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    done = subprocess.run([sys.executable, "-m", "storytok.warmup"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "kernels ready" in done.stderr
    probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert "COMPILED []" in probe.stdout, probe.stdout


def test_unknown_half_is_refused():
    bad = subprocess.run([sys.executable, "-m", "storytok.warmup", "--half", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
