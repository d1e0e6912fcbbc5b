"""Per-class precision, recall and F1 from a confusion-matrix CSV (target,predicted,count).

Starter recipe (docs/recipes.md). Kinds: confusion_matrix.
"""

import pandas as pd
from pipelens import Table


def render(path: str, meta: dict):
    df = pd.read_csv(path)
    df.columns = [c.strip().lower() for c in df.columns]
    df["count"] = pd.to_numeric(df["count"], errors="raise")
    labels = sorted(set(df["target"].astype(str)) | set(df["predicted"].astype(str)))
    df["target"], df["predicted"] = df["target"].astype(str), df["predicted"].astype(str)
    rows = []
    for label in labels:
        tp = df[(df.target == label) & (df.predicted == label)]["count"].sum()
        predicted = df[df.predicted == label]["count"].sum()
        actual = df[df.target == label]["count"].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            [label, int(actual), round(float(precision), 4), round(float(recall), 4), round(float(f1), 4)]
        )
    return Table(["class", "support", "precision", "recall", "f1"], rows)
