import os
SHARED = os.environ.get("SHARED_DATA", "../shared/data")  # the shared benchmark manifests
import csv, json, re
import numpy as np
D = os.environ.get("ENC_SCRATCH", "scratch-enc") + "/"
LABELS = ["ang", "exc", "neu", "sad"]
texts = json.load(open(D + "texts.json"))
tindex = {t: i for i, t in enumerate(texts)}
F = np.load(D + "text_feats.npz")
pooled, lens = F["pooled"], F["lens"]
offs = np.concatenate([[0], np.cumsum(lens)])
def tokens(kind, i):
    return F[kind][offs[i]:offs[i+1]]
_mid = F["mid"]; _last = F["last"]
def tok(kind, i):
    arr = _mid if kind == "mid" else _last
    return arr[offs[i]:offs[i+1]]
def rows(name):
    return list(csv.DictReader(open(f"{SHARED}/bench/{name}.csv")))
def meld_split():
    """train (minus val dialogues), val (dialogue % 5 == 0 of MELD train), dev."""
    tr, va, dv = [], [], []
    for r in rows("meld4"):
        if r["session"] == "dev":
            dv.append(r)
        else:
            dia = int(re.search(r"dia(\d+)_", r["id"]).group(1))
            (va if dia % 5 == 0 else tr).append(r)
    return tr, va, dv
def xy(rs):
    return np.array([tindex[r["text"]] for r in rs]), np.array([LABELS.index(r["label"]) for r in rs])
def ua(y, p):
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))
def wa(y, p):
    return float(np.mean(y == p))
