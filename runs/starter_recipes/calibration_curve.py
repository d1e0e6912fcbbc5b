"""Calibration curve (reliability diagram) of a predictions CSV with columns label,score.

Starter recipe (docs/recipes.md): runs in the sandbox, never in Pipelens itself.
Kinds: table. Name patterns: *predictions*.csv, *calibration*.csv
"""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pipelens import PNG  # noqa: E402


def render(path: str, meta: dict):
    df = pd.read_csv(path, usecols=["label", "score"], dtype={"label": "float64", "score": "float64"})
    df = df.dropna()
    bins = np.linspace(0.0, 1.0, 11)
    which = np.clip(np.digitize(df["score"].to_numpy(), bins) - 1, 0, 9)
    grouped = df.groupby(which)
    mean_score = grouped["score"].mean()
    frac_pos = grouped["label"].mean()
    counts = grouped.size()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(mean_score, frac_pos, marker="o", label="model")
    ax.set_ylabel("fraction of positives")
    ax.set_title(f"Calibration: {meta.get('name', '')} ({len(df):,} rows)")
    ax.legend(loc="upper left")
    hist.bar((bins[:-1] + bins[1:]) / 2, counts.reindex(range(10), fill_value=0), width=0.09)
    hist.set_xlabel("mean predicted score")
    hist.set_ylabel("rows")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return PNG(buf.getvalue())
