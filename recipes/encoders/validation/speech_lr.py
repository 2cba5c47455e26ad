"""Nested LOSO: for each outer fold, options picked on inner LOSO over its 4 training sessions."""
from speech_common import *
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
feats = {}
for mode in sys.argv[1:]:
    feats[f"wt-{mode}"] = meanstd(load_frames(mode))
P = meanstd(paper_frames())
feats["paper34"] = P
for mode in sys.argv[1:]:
    feats[f"wt-{mode}+paper34"] = np.concatenate([feats[f"wt-{mode}"], P], 1)
Cs = [0.01, 0.1, 1.0]
def fit_pred(X, tr, te, C):
    m = make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=3000))
    m.fit(X[tr], y[tr]); return m.predict(X[te])
for name, X in feats.items():
    # plain LOSO per C (for information) and nested choice of C
    res = {}
    for C in Cs:
        pred = np.zeros_like(y)
        for k in range(1, 6):
            tr, te = sess != k, sess == k
            pred[te] = fit_pred(X, tr, te, C)
        res[C] = ua(y, pred)
    # inner validation for each C: LOSO over sessions 1-5 minus outer
    inner = {C: [] for C in Cs}
    nested = np.zeros_like(y)
    for k in range(1, 6):
        scores = {}
        for C in Cs:
            pi = np.zeros_like(y); mask = sess != k
            for j in set(range(1, 6)) - {k}:
                tr, te = mask & (sess != j), sess == j
                pi[te] = fit_pred(X, tr, te, C)
            scores[C] = ua(y[mask], pi[mask]); inner[C].append(scores[C])
        Cb = max(scores, key=scores.get)
        tr, te = sess != k, sess == k
        nested[te] = fit_pred(X, tr, te, Cb)
    print(f"{name:22s} inner-val UA " + " ".join(f"C={C}:{np.mean(v):.3f}" for C, v in inner.items())
          + f" | nested LOSO UA {ua(y, nested):.3f}  (info: LOSO per C " + " ".join(f"{res[C]:.3f}" for C in Cs) + ")", flush=True)
