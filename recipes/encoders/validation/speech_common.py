import os
SHARED = os.environ.get("SHARED_DATA", "../shared/data")  # the shared benchmark manifests
import csv, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../../..")
D = os.environ.get("ENC_SCRATCH", "scratch-enc") + "/"
LABELS = ["ang", "exc", "neu", "sad"]
def rows(name):
    return list(csv.DictReader(open(f"{SHARED}/bench/{name}.csv")))
R = rows("ravdess4")
y = np.array([LABELS.index(r["label"]) for r in R])
sess = np.array([int(r["session"]) for r in R])
def ua(yy, p):
    return float(np.mean([np.mean(p[yy == c] == c) for c in np.unique(yy)]))
def wa(yy, p):
    return float(np.mean(yy == p))
def load_frames(mode):
    z = np.load(D + f"whisper_{mode}.npz")
    return [z[r["id"]].astype(np.float32) for r in R]
def paper_frames():
    from emofusion.features.acoustic import AcousticConfig
    from emofusion.features.cache import FeatureCache
    c = FeatureCache(AcousticConfig())
    got = c.get_many([SHARED + "/bench/" + r["audio"] for r in R], progress=False)
    return [got[SHARED + "/bench/" + r["audio"]] for r in R]
def meanstd(frames):
    return np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in frames])
