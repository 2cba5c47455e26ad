from text_common import *
from sklearn.linear_model import LogisticRegression
tr, va, dv = meld_split()
print(len(tr), len(va), len(dv))
(itr, ytr), (iva, yva), (idv, ydv) = xy(tr), xy(va), xy(dv)
for C in [0.3, 1, 3, 10, 30]:
    for cw in ["balanced", None]:
        m = LogisticRegression(C=C, class_weight=cw, max_iter=2000).fit(pooled[itr], ytr)
        p = m.predict(pooled[iva])
        print(f"LR C={C} cw={cw}: val UA {ua(yva,p):.3f} WA {wa(yva,p):.3f}")
