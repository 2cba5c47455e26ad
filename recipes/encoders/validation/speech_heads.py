"""Torch heads on Whisper frames, nested LOSO (inner folds over each outer fold's training sessions)."""
import time
import torch, torch.nn as nn, torch.nn.functional as Fn
from speech_common import *
torch.set_num_threads(1)
frames = load_frames(sys.argv[1] if len(sys.argv) > 1 else "real")
T = max(len(f) for f in frames)
X = np.zeros((len(frames), T, 384), np.float32); M = np.zeros((len(frames), T), np.float32)
for i, f in enumerate(frames): X[i, :len(f)] = f; M[i, :len(f)] = 1
X, M = torch.from_numpy(X), torch.from_numpy(M)

class Head(nn.Module):
    def __init__(s, kind, hidden=0):
        super().__init__(); s.kind = kind
        d = {"meanstd": 768, "attn": 384, "attn+meanstd": 1152}[kind]
        if "attn" in kind:
            s.p = nn.Linear(384, 128); s.v = nn.Linear(128, 1, bias=False)
        s.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(d, 4)) if not hidden else nn.Sequential(nn.Dropout(0.3), nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 4))
    def forward(s, x, m):
        n = m.sum(1, keepdim=True)
        mean = (x * m[..., None]).sum(1) / n
        std = (((x - mean[:, None]) ** 2 * m[..., None]).sum(1) / n).clamp_min(1e-6).sqrt()
        parts = []
        if "attn" in s.kind:
            e = s.v(torch.tanh(s.p(x))).squeeze(-1).masked_fill(m == 0, -1e9)
            parts.append((torch.softmax(e, 1)[..., None] * x).sum(1))
        if "meanstd" in s.kind:
            parts += [mean, std]
        return s.out(torch.cat(parts, 1))

def fit_predict(tr, te, kind, hidden, epochs=30, seed=0):
    torch.manual_seed(seed)
    xm = (X[tr] * M[tr][..., None]).sum((0, 1)) / M[tr].sum(); xs = (((X[tr] - xm) ** 2) * M[tr][..., None]).sum((0, 1)) / M[tr].sum()
    xs = xs.sqrt().clamp_min(1e-6)
    norm = lambda idx: (X[idx] - xm) / xs * M[idx][..., None]
    Xtr, Mtr, ytr = norm(tr), M[tr], torch.from_numpy(y[tr])
    model = Head(kind, hidden); opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-2)
    w = torch.tensor(len(ytr) / (4 * np.bincount(y[tr], minlength=4)), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        model.train()
        for b in torch.randperm(len(ytr), generator=g).split(32):
            loss = Fn.cross_entropy(model(Xtr[b], Mtr[b]), ytr[b], weight=w)
            opt.zero_grad(); loss.backward(); opt.step()
    model.eval()
    with torch.no_grad():
        return model(norm(te), M[te]).argmax(1).numpy()

options = [("meanstd", 0), ("attn", 0), ("attn+meanstd", 0)]
OUTER = [int(a) for a in sys.argv[2:]] or [5]
t0 = time.time()
for kind, hidden in options:
    inner, outer = [], np.zeros_like(y)
    for k in OUTER:
        mask = sess != k; pi = np.zeros_like(y)
        for j in set(range(1, 6)) - {k}:
            pi[sess == j] = fit_predict(np.where(mask & (sess != j))[0], np.where(sess == j)[0], kind, hidden)
        inner.append(ua(y[mask], pi[mask]))
    print(f"{kind} hidden={hidden}: inner-val UA (outer folds {OUTER}) {np.mean(inner):.3f}  {time.time()-t0:.0f}s", flush=True)
