"""Vega-Lite histogram of a numeric column of a CSV (meta["column"], else the most varied one).

Starter recipe (docs/recipes.md). Kinds: table.
"""

import numpy as np
import pandas as pd
from pipelens import VegaLite


def render(path: str, meta: dict):
    df = pd.read_csv(path, nrows=1_000_000)
    numeric = df.select_dtypes("number")
    if numeric.empty:
        raise ValueError("The CSV has no numeric column.")
    # The asked-for column, else the numeric column with the most distinct values.
    column = meta.get("column")
    if column not in numeric.columns:
        column = max(numeric.columns, key=lambda c: numeric[c].nunique())
    values = numeric[column].dropna().to_numpy()
    counts, edges = np.histogram(values, bins=20)
    data = [
        {"bin_start": float(edges[i]), "bin_end": float(edges[i + 1]), "count": int(counts[i])}
        for i in range(len(counts))
    ]
    return VegaLite(
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": f"Histogram of {column}",
            "data": {"values": data},
            "mark": "bar",
            "encoding": {
                "x": {"field": "bin_start", "type": "quantitative", "title": column},
                "x2": {"field": "bin_end"},
                "y": {"field": "count", "type": "quantitative", "title": "rows"},
            },
        }
    )
