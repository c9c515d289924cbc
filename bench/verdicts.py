"""What a run's rows add up to: id checks, the issues' targets (PASS/FAIL with the rule and the
numbers used), and issue 4's full-size estimates. Pure functions over the summary rows, so the
tests can feed them tiny made-up rows.

Targets are evaluated per corpus (the run's CORPUS): issue 9's (1) for tinystories, (2) and
(3) for webtext, (4)-(6) for every corpus; issue 10's wherever its jobs ran; issue 4's kept
ones for tinystories. A target whose rows did not run (or failed) is SKIP, with the reason.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.common import MB, size_text
from bench.harness import speed_ratio

FULL_TRAIN_BYTES = 2000 * MB      # the 2 GB make_corpus.py file of issue 4's full-size figures
FULL_VALID_BYTES = 20 * MB
COUNT_KEY = "counting (read, scan, count, merge tables)"


# ---- checks -----------------------------------------------------------------------------------

def _check(name: str, ok: bool | None, detail: str, about: str = "", row: str = "", ref: str = "") -> dict:
    """about: the tool compared (or "merges"); row / ref: the two rows an id check compares."""
    return {"name": name, "ok": ok, "detail": detail, "about": about, "row": row, "ref": ref}


ID_GROUPS = ("encode", "batch", "inputs", "ray")


def checks(rows: list[dict]) -> list[dict]:
    """Merges on all cores == 1 core; every encoding row's ids == storytok encode_file's (as
    documents always; as the whole stream too when both rows have it); every run of a row the
    same. The reference row itself comes first among the id checks (about="reference")."""
    by = {s["key"]: s for s in rows}
    out = []
    a, b = by.get("train/storytok-1"), by.get("train/storytok-all")
    if a and b and a.get("merges_hash") and b.get("merges_hash"):
        out.append(_check("merges: storytok all cores == 1 core", a["merges_hash"] == b["merges_hash"],
                          f"{b['merges']:,} merges, sha256 {b['merges_hash'][:12]} vs {a['merges_hash'][:12]}", "merges"))
    ref = next((by[k] for k in ("encode/storytok-all", "encode/storytok-1") if by.get(k, {}).get("docs_hash")), None)
    if ref is None:
        ref = next((s for s in rows if s["group"] in ID_GROUPS and s.get("docs_hash")), None)
    if ref is not None:
        out.append(_check("ids: reference", True,
                          f"{ref['docs']:,} documents, {ref['doc_tokens']:,} tokens without separators, sha1 "
                          f"{ref['docs_hash'][:12]}" + (f"; whole stream {ref['tokens']:,} tokens, sha1 "
                                                        f"{ref['ids_hash'][:12]}" if ref.get("ids_hash") else ""),
                          "reference", ref["label"], ref["label"]))
        for o in rows:
            if o["group"] not in ID_GROUPS or o is ref or "merges_hash" in o or o["key"].startswith("ray/train"):
                continue
            name = f"ids: {o['label']} == {ref['label']}"
            if not o.get("docs_hash"):
                why = o.get("error") or ("no ids recorded" if o.get("seconds") is not None else "not run")
                if o.get("partial"):
                    why = f"it encoded only the first {size_text(o['bytes'])}"
                out.append(_check(name, None, f"not compared: {why}", o["tool"], o["label"], ref["label"]))
                continue
            same_docs = (o["docs_hash"], o["docs"], o["doc_tokens"]) == (ref["docs_hash"], ref["docs"], ref["doc_tokens"])
            detail = (f"{o['docs']:,} vs {ref['docs']:,} documents, {o['doc_tokens']:,} vs {ref['doc_tokens']:,} tokens "
                      f"without separators, sha1 {o['docs_hash'][:12]} vs {ref['docs_hash'][:12]}")
            ok = same_docs
            if o.get("ids_hash") and ref.get("ids_hash"):
                same_stream = (o["ids_hash"], o["tokens"]) == (ref["ids_hash"], ref["tokens"])
                ok = ok and same_stream
                detail += f"; whole stream {o['tokens']:,} tokens, {'same' if same_stream else 'DIFFERENT'}"
            out.append(_check(name, ok, detail, o["tool"], o["label"], ref["label"]))
    a, b = by.get("ray/train-local") or by.get("train/storytok-all"), by.get("ray/train-ray")
    if a and b and a.get("merges_hash") and b.get("merges_hash"):
        out.append(_check("merges: counting on Ray == train_bpe", a["merges_hash"] == b["merges_hash"],
                          f"{b['merges']:,} merges, sha256 {b['merges_hash'][:12]} vs {a['merges_hash'][:12]}",
                          "merges-ray"))
    leaky = [s for s in rows if s["tool"] != "storytok" and s.get("loaded")]
    peers = [s for s in rows if s["tool"] != "storytok" and "loaded" in s]
    if peers:
        out.append(_check("peer workers never load storytok or Numba", not leaky,
                          ", ".join(f"{s['label']} loaded {'+'.join(s['loaded'])}" for s in leaky)
                          or f"{len(peers)} peer rows checked", "isolation"))
    for s in rows:
        if s.get("unstable"):
            out.append(_check(f"{s['label']}: same result in every run", False, s["unstable"], s["tool"]))
    return out


def merge_agreement(work: Path) -> dict:
    """How far the peers' merges agree with storytok's (information only: tie-breaking differs)."""
    out = {}
    try:
        ours = json.loads((work / "learned-storytok.json").read_text())
    except OSError:
        return out
    for peer, name in (("gigatoken", "learned-gigatoken.json"), ("HF tokenizers", "learned-hf.json"),
                       ("rustbpe", "learned-rustbpe.json")):
        try:
            theirs = json.loads((work / name).read_text())
        except OSError:
            continue
        k = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        out[peer] = {"merges": len(theirs), "identical_prefix": k, "common_tokens": len(set(ours) & set(theirs)),
                     "of": len(ours)}
    return out


# ---- targets ----------------------------------------------------------------------------------

def _fmt_x(v):
    return f"{v:.2f}x"


def _fmt_s(v):
    return f"{v:.1f} s"


def _fmt_mb(v):
    return f"{v / MB:,.0f} MB"


def _target(issue: str, corpus: str, name: str, value, op: str, limit, fmt, used: str = "", why_missing: str = "") -> dict:
    t = {"issue": issue, "corpus": corpus, "name": name, "value": value, "op": op, "target": limit}
    if value is None:
        t.update(ok=None, detail=why_missing or "not measured")
        return t
    ok = {">=": value >= limit, "<=": value <= limit, "<": value < limit}[op]
    t.update(ok=ok, detail=(f"{used} = " if used else "") + f"{fmt(value)} (target {op} {fmt(limit)})")
    return t


class _Rows:
    """Lookup helpers over the summary rows, and why a row is missing."""

    def __init__(self, rows: list[dict]):
        self.by = {s["key"]: s for s in rows}

    def get(self, key):
        s = self.by.get(key)
        return s if s and s.get("seconds") is not None else None

    def why(self, *keys) -> str:
        for k in keys:
            s = self.by.get(k)
            if s is None:
                return f"not run ({k} not in this run's job groups)"
            if s.get("seconds") is None:
                return f"{s['label']} failed: {s.get('error') or 'no result'}"
        return "not measured"

    def speed(self, key) -> str:
        s = self.get(key)
        if not s:
            return "?"
        return f"{s['label']} {s['mb_per_s']:,.1f} MB/s" if s.get("mb_per_s") else f"{s['label']} {s['seconds']:.2f} s"

    def ratio(self, a, b):
        """(speed of a / speed of b, the numbers used, why missing)"""
        x = speed_ratio(self.get(a), self.get(b))
        return x, (f"{self.speed(a)} / {self.speed(b)}" if x is not None else ""), self.why(a, b)

    def rss(self, *keys):
        got = [self.get(k) for k in keys]
        got = [s for s in got if s]
        if not got:
            return None, "", self.why(*keys)
        top = max(got, key=lambda s: s["peak_rss_bytes"])
        return top["peak_rss_bytes"], f"peak RSS of {top['label']}", ""


def targets(rows: list[dict], checks_: list[dict], corpus: str, est: dict, input_bytes: int) -> list[dict]:
    r = _Rows(rows)
    size = size_text(input_bytes)
    out: list[dict] = []
    T = out.append

    # ---- issue 9 -------------------------------------------------------------------------
    if corpus in ("tinystories", "webtext"):
        n = "1" if corpus == "tinystories" else "2"
        x, used, why = r.ratio("encode/storytok-1", "encode/gigatoken-1-cold")
        T(_target("9", corpus, f"({n}) encode, 1 core >= 1.0x gigatoken parallel=False (cold), {size}", x, ">=", 1.0,
                  _fmt_x, used, why))
        x, used, why = r.ratio("train/storytok-all", "train/gigatoken")
        T(_target("9", corpus, f"({n}) train {'10K' if corpus == 'tinystories' else '32K'}, all cores, at least as "
                               f"fast as gigatoken train_bpe, {size}", x, ">=", 1.0, _fmt_x, used, why))
    if corpus == "webtext":
        v, used, why = r.rss("train/storytok-all")
        T(_target("9", corpus, f"(2) peak RSS of train 32K <= 600 MB, {size}", v, "<=", 600 * MB, _fmt_mb, used, why))
        v, used, why = r.rss("encode/storytok-1", "encode/storytok-all")
        T(_target("9", corpus, f"(2) peak RSS of encode_file <= 600 MB, {size}", v, "<=", 600 * MB, _fmt_mb, used, why))
        big = r.by.get("scale/train")
        bsize = size_text(big["bytes"]) if big else "4 GB"
        v, used, why = r.rss("scale/train")
        if v is not None:
            s = r.get("scale/train")
            used += f" (train time {s['seconds']:.1f} s, {s['mb_per_s']:,.0f} MB/s: the OpenWebText estimate)"
        T(_target("9", corpus, f"(3) --scale: peak RSS of train 32K <= 2 GB, {bsize}", v, "<=", 2000 * MB, _fmt_mb,
                  used, why if big else "run with --scale"))
        x, used, why = r.ratio("scale/encode-1", "encode/storytok-1")
        T(_target("9", corpus, f"(3) --scale: encode 1 core on {bsize} >= 0.8x its speed on {size}", x, ">=", 0.8,
                  _fmt_x, used, why if r.by.get("scale/encode-1") else "run with --scale"))
    x, used, why = r.ratio("encode/storytok-all", "encode/storytok-1")
    T(_target("9", corpus, f"(4) encode, all cores >= 1.8x one core, {size}", x, ">=", 1.8, _fmt_x, used, why))
    for tool in ("tiktoken", "gigatoken"):
        mine = [c for c in checks_ if c["about"] == tool]
        bad = [c for c in mine if c["ok"] is False]
        ok = None if not mine or all(c["ok"] is None for c in mine) else not bad
        T({"issue": "9", "corpus": corpus, "name": f"(5) ids identical to {tool}, {size}", "value": None,
           "ok": ok, "detail": (f"{sum(c['ok'] is True for c in mine)} of {len(mine)} comparisons identical"
                                + (f"; different: {', '.join(c['name'] for c in bad)}" if bad else "")
                                if mine else "no id comparison with it in this run")})
    merges = [c for c in checks_ if c["about"] == "merges"]
    T({"issue": "9", "corpus": corpus, "name": f"(5) merges on all cores == one core, {size}", "value": None,
       "ok": merges[0]["ok"] if merges else None,
       "detail": merges[0]["detail"] if merges else r.why("train/storytok-1", "train/storytok-all")})
    # The warmup compiles in two processes (shared kernels, then training's and encoding's
    # halves side by side): its wall time is what `make setup` costs on an idle machine; the
    # CPU seconds (both processes) are printed beside it, with the load.
    s = r.get("cold/storytok-compile")
    T(_target("9", corpus, "(6) kernel compile with an empty Numba cache <= 10 s (17 s at issue time)",
              s.get("seconds") if s else None, "<=", 10.0, _fmt_s,
              f"wall seconds of make setup's warmup in a fresh cache directory ({s.get('cpu_seconds') or 0:.1f} s "
              f"CPU in its two processes, load {s.get('load1') or 0:.1f})" if s else "", r.why("cold/storytok-compile")))

    # ---- issue 10 ------------------------------------------------------------------------
    if any(k.startswith(("batch/", "inputs/")) for k in r.by):
        for a, b, lim, name in (
                ("batch/storytok-encode_batch", "encode/storytok-all", 0.8, "encode_batch(stories) >= 0.8x encode_file, all cores"),
                ("batch/storytok-encode_batch", "batch/tiktoken", 10, "encode_batch >= 10x tiktoken encode_ordinary_batch, all threads"),
                ("batch/storytok-encode_to_numpy", "encode/storytok-all", 0.8, "encode_to_numpy(whole text) >= 0.8x encode_file, all cores"),
                ("inputs/jsonl.zst", "inputs/txt", 0.7, "make encode from .jsonl.zst >= 0.7x the .txt MB/s"),
                ("inputs/parquet", "inputs/txt", 0.7, "make encode from .parquet >= 0.7x the .txt MB/s")):
            x, used, why = r.ratio(a, b)
            T(_target("10", corpus, f"{name}, {size}", x, ">=", lim, _fmt_x, used, why))
        for kind in ("jsonl.zst", "parquet"):
            v, used, why = r.rss(f"inputs/{kind}")
            T(_target("10", corpus, f"make encode from .{kind}: peak RSS < 600 MB, {size}", v, "<", 600 * MB, _fmt_mb,
                      used, why))

    # ---- issue 11 ------------------------------------------------------------------------
    if any(k.startswith("ray/") for k in r.by):
        x, used, why = r.ratio("ray/ray-all", "ray/local")
        T(_target("11", corpus, f"(4) make encode's work, ENGINE=ray >= 0.6x ENGINE=local on the same cores "
                                f"(workers warm), {size}", x, ">=", 0.6, _fmt_x, used, why))
        ray_rows = [c for c in checks_ if c["about"] == "storytok" and "ENGINE=ray" in c["name"]]
        T({"issue": "11", "corpus": corpus, "name": f"(1) ids of ENGINE=ray == encode_file's, {size}", "value": None,
           "ok": None if not ray_rows or all(c["ok"] is None for c in ray_rows) else all(c["ok"] for c in ray_rows),
           "detail": f"{sum(c['ok'] is True for c in ray_rows)} of {len(ray_rows)} ENGINE=ray rows identical"
                     if ray_rows else "no ENGINE=ray row with ids in this run"})
        m = [c for c in checks_ if c["about"] == "merges-ray"]
        T({"issue": "11", "corpus": corpus, "name": f"(1) merges counted on Ray == train_bpe, {size}", "value": None,
           "ok": m[0]["ok"] if m else None, "detail": m[0]["detail"] if m else r.why("ray/train-local", "ray/train-ray")})
        for a, b, name in (("ray/ray-all", "ray/ray-1", "(4) scaling, ENGINE=ray: all CPUs / 1 CPU"),
                           ("ray/stage-ray", "ray/stage-local", "(4) make encode end to end (Ray's start included), "
                                                                "ENGINE=ray / ENGINE=local")):
            x, used, why = r.ratio(a, b)
            T({"issue": "11", "corpus": corpus, "name": f"{name}, {size} (a figure, no target)", "value": x,
               "ok": None, "figure": x is not None, "detail": f"{used} = {_fmt_x(x)}" if x is not None else why})

    # ---- issue 4, kept as regression guards (TinyStories) -------------------------------------
    if corpus == "tinystories":
        x, used, why = r.ratio("encode/storytok-1", "encode/tiktoken-1")
        T(_target("4", corpus, f"encode, 1 core >= 10x tiktoken 1 thread, {size}", x, ">=", 10, _fmt_x, used, why))
        x, used, why = r.ratio("train/storytok-all", "train/rustbpe")
        T(_target("4", corpus, f"train >= 4x rustbpe, {size}", x, ">=", 4, _fmt_x, used, why))
        x, used, why = r.ratio("train/storytok-all", "train/hf")
        T(_target("4", corpus, f"train >= 8x HF tokenizers, {size}", x, ">=", 8, _fmt_x, used, why))
        for key, name in (("make tokenizer", "full size: make tokenizer (2 GB) < 30 s"),
                          ("make encode + make stats", "full size: make encode + make stats (2 GB) < 30 s")):
            e = est.get(key)
            if e and not e.get("measured") and input_bytes < 100 * MB:   # too rough to judge by
                T(_target("4", corpus, name, None, "<", 30, _fmt_s, why_missing=(
                    f"not judged: estimated {e['seconds']:.0f} s from only {size}; run on >= 100 MB or with --scale")))
                continue
            T(_target("4", corpus, name, e["seconds"] if e else None, "<", 30, _fmt_s,
                      ("measured" if e and e.get("measured") else "estimated (--scale measures it)") if e else "",
                      "needs the stages group (or --scale)"))
        big = size_text(r.by["scale/train"]["bytes"]) if "scale/train" in r.by else "2 GB"
        for key, lim, name in (("scale/train", 400 * MB, f"--scale: peak RSS of train_bpe, {big} < 400 MB"),
                               ("scale/encode", 600 * MB, f"--scale: peak RSS of encode_file, {big} < 600 MB")):
            v, used, why = r.rss(key)
            T(_target("4", corpus, name, v, "<", lim, _fmt_mb, used, why if r.by.get(key) else "run with --scale"))
    if r.by and all(k.startswith("ray/") for k in r.by):   # make bench ENGINE=ray: the other issues' rows never ran
        out = [t for t in out if t["issue"] == "11"]
    return out


# ---- issue 4's full-size estimates (tinystories) ------------------------------------------------

def estimates(rows: list[dict], input_bytes: int) -> dict:
    """Full-size (2 GB make_corpus.py file) times of make tokenizer and make encode + make stats.

    Measured when --scale ran the stages on the 2 GB file. Otherwise scaled from the input:
    make tokenizer = the stage on the input + pre-token counting of the remaining bytes at
    the measured rate (all cores); the merge loop works on unique pre-tokens, whose number
    barely grows with more of the same kind of text, so it is not scaled. make encode + make
    stats = each stage on the input minus its fixed cost (the same stage on the tiny file),
    scaled linearly to 2,000 MB train + 20 MB valid, plus the fixed cost once. With --scale
    both are shown, so the scaling can be judged against the measurement.
    """
    by = {s["key"]: s for s in rows}
    out = {}
    size = input_bytes
    full = FULL_TRAIN_BYTES + FULL_VALID_BYTES
    st = by.get("train/storytok-all", {})
    count_s = (st.get("breakdown") or {}).get(COUNT_KEY)
    tok_stage = by.get("stages/tokenizer", {})
    rough = f"; ROUGH: scaled from only {size / MB:,.1f} MB" if size < 100 * MB else ""
    scaled_what = "pre-token counting"
    if count_s is None and st.get("seconds") is not None:   # no breakdown: scale the whole of training (upper bound)
        count_s, scaled_what = st["seconds"], "all of train_bpe (no per-stage breakdown)"
    tok_est = enc_est = None
    if count_s and tok_stage.get("seconds") is not None:
        base = tok_stage["seconds"]
        tok_est = {
            "seconds": base + count_s * (FULL_TRAIN_BYTES / size - 1), "measured": False,
            "how": f"stage on the input {base:.1f} s ({size / MB:,.0f} MB) + {scaled_what} at "
                   f"{size / MB / count_s:,.0f} MB/s (all cores) for the other {(FULL_TRAIN_BYTES - size) / MB:,.0f} MB"
                   + ("; merge loop not scaled" if scaled_what == "pre-token counting" else "") + rough}
    enc, sts = by.get("stages/encode", {}), by.get("stages/stats", {})
    if enc.get("seconds") is not None and sts.get("seconds") is not None:
        k = full / size
        fe = by.get("stages/encode-tiny", {}).get("seconds") or 0.0
        fs = by.get("stages/stats-tiny", {}).get("seconds") or 0.0
        e = fe + max(enc["seconds"] - fe, 0.0) * k
        s = fs + max(sts["seconds"] - fs, 0.0) * k
        enc_est = {
            "seconds": e + s, "encode_seconds": e, "stats_seconds": s, "measured": False,
            "how": f"stages on {size / MB:,.0f} MB (encode {enc['seconds']:.1f} s, stats {sts['seconds']:.1f} s) "
                   f"minus their fixed cost (same stage on the tiny file: {fe:.1f} s, {fs:.1f} s), "
                   f"x{k:.1f} to 2,020 MB (train + valid), + fixed cost" + rough}
    m_tok = by.get("scale/make-tokenizer", {})
    m_enc, m_sts = by.get("scale/make-encode", {}), by.get("scale/make-stats", {})

    def full_size(job):   # only a run on (about) the 2 GB file stands for the full-size figure
        return job.get("seconds") is not None and job["bytes"] >= 0.9 * FULL_TRAIN_BYTES

    if m_tok.get("seconds") is not None:
        key = "make tokenizer" if full_size(m_tok) else f"make tokenizer, measured on {size_text(m_tok['bytes'])}"
        out[key] = {"seconds": m_tok["seconds"], "measured": full_size(m_tok),
                    "how": f"measured: stages/tokenizer.py on the {size_text(m_tok['bytes'])} file"}
        if tok_est:
            out["make tokenizer" if not full_size(m_tok) else "make tokenizer, scaled from the input"] = tok_est
    elif tok_est:
        out["make tokenizer"] = tok_est
    if m_enc.get("seconds") is not None and m_sts.get("seconds") is not None:
        key = ("make encode + make stats" if full_size(m_enc)
               else f"make encode + make stats, measured on {size_text(m_enc['bytes'])}")
        out[key] = {
            "seconds": m_enc["seconds"] + m_sts["seconds"], "encode_seconds": m_enc["seconds"],
            "stats_seconds": m_sts["seconds"], "measured": full_size(m_enc),
            "how": f"measured: stages/encode.py {m_enc['seconds']:.1f} s + stages/stats.py {m_sts['seconds']:.1f} s "
                   f"on {size_text(m_enc['bytes'])} (train + valid)"}
        if enc_est:
            out["make encode + make stats" if not full_size(m_enc)
                else "make encode + make stats, scaled from the input"] = enc_est
    elif enc_est:
        out["make encode + make stats"] = enc_est
    return out
