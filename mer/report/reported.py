"""Numbers the papers report, kept apart from ours and always labelled "reported".

Each entry names the paper, table, dataset and protocol so no reported number can be
read as one of this study's results. The numbers are data, one file per method:
``params/<method>/reported.csv``, whose comment lines say the units, tables and quirks.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from mer.paths import project_root

COLUMNS = ["method", "dataset", "source", "protocol", "acc", "uf1", "uar", "aggregation", "split", "flags"]
FILE_COLUMNS = ["dataset", "protocol", "source", "acc", "uf1", "uar"]
# optional column: how the paper aggregates LOSO results (empty: the paper does not say)
AGGREGATIONS = {"pooled": "pooled over subjects", "subject mean": "mean over subjects"}
# optional column: what the row's number rests on beyond its protocol, ';'-separated keys of FLAGS
FLAGS = {"gt_au": "ground-truth AU input (annotations made from the same expression as the label)",
         "test_epochs": "epochs picked on the test subject (the source's public code does it)"}
METRICS = ("acc", "uf1", "uar")


def load_reported(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every ``<root>/<method>/reported.csv`` as one table with ``COLUMNS``, methods in name
    order and each file's rows in file order; ``root`` defaults to the project's ``params/``.

    A file has the columns ``FILE_COLUMNS`` (the method is its folder's name), ``#`` comment
    lines (units, which table, the paper's quirks) and metrics as fractions in [0, 1]; an
    empty cell is a metric the paper does not report (NaN here). An optional column
    ``aggregation`` says how the paper combines LOSO folds (a key of :data:`AGGREGATIONS`;
    empty: not stated), an optional column ``split`` the paper's evaluation split in
    words (LOSO, a fixed held-out test set, ...; empty: not stated), and an optional column
    ``flags`` what the number rests on beyond its protocol (keys of :data:`FLAGS`). A malformed file raises
    ``ValueError`` naming the file, the line and the problem."""
    root = Path(root) if root is not None else project_root() / "params"
    frames = [_read_reported(path) for path in sorted(root.glob("*/reported.csv"))]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c in METRICS else object) for c in COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _read_reported(path: Path) -> pd.DataFrame:
    numbered = [(i, line) for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if not line.lstrip().startswith("#")]
    reader = csv.reader(line for _, line in numbered)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: no header line (expected columns {','.join(FILE_COLUMNS)})")
    header = [h.strip() for h in header]
    missing = [c for c in FILE_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (expected {','.join(FILE_COLUMNS)})")
    rows = []
    for fields in reader:
        where = f"{path}, line {numbered[reader.line_num - 1][0]}"
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise ValueError(f"{where}: {len(fields)} fields where the header has {len(header)}")
        raw = dict(zip(header, (f.strip() for f in fields)))
        row = {"method": path.parent.name}
        for col in ("dataset", "source", "protocol"):
            if not raw[col]:
                raise ValueError(f"{where}: empty {col}")
            row[col] = raw[col]
        row["aggregation"] = raw.get("aggregation", "")
        row["split"] = raw.get("split", "")
        row["flags"] = raw.get("flags", "")
        unknown = [f for f in flag_keys(row["flags"]) if f not in FLAGS]
        if unknown:
            raise ValueError(f"{where}: unknown flag(s) {unknown}; known: {sorted(FLAGS)} (';'-separated)")
        if row["aggregation"] and row["aggregation"] not in AGGREGATIONS:
            raise ValueError(f"{where}: aggregation {row['aggregation']!r} is not one of {sorted(AGGREGATIONS)} "
                             "(or empty: not stated)")
        for col in METRICS:
            text = raw[col]
            if not text:
                row[col] = float("nan")
                continue
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{where}: {col} {text!r} is not a number") from None
            if not 0 <= value <= 1:
                raise ValueError(f"{where}: {col} {text} is outside [0, 1] (give fractions, not percent)")
            row[col] = value
        if all(pd.isna(row[c]) for c in METRICS):
            raise ValueError(f"{where}: no metric given (acc, uf1 and uar all empty)")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS).astype({c: float for c in METRICS})


DATASET_NAMES = {"synth": "SynthME (synthetic)", "casme2": "CASME II", "samm": "SAMM", "smic": "SMIC",
                 "casme_sq": "CAS(ME)^2", "casme3": "CAS(ME)^3", "mmew": "MMEW", "composite": "MEGC 2019 composite"}


def reported(method: str) -> pd.DataFrame:
    """The numbers ``method``'s paper (or another paper, for the baseline) reports."""
    table = load_reported()
    return table[table["method"] == method].reset_index(drop=True)


def compare(method: str, dataset: str, protocol: str, metrics: dict, subject_mean: dict | None = None,
            split: str = "LOSO") -> pd.DataFrame:
    """One table: each reported number (labelled, with its dataset, protocol (classes),
    the paper's split and how it aggregates folds) and this run's pooled number (``split``:
    this run's folds in words); when a paper averages over subjects and ``subject_mean``
    (:func:`mer.train.metrics.subject_mean` of this run) is given, this run's mean over
    subjects too."""
    table = reported(method)
    rows = [{"kind": "reported", "dataset": DATASET_NAMES.get(r["dataset"], r["dataset"]),
             "protocol": r["protocol"], "source": r["source"], "split": r["split"] or "not stated",
             "aggregation": AGGREGATIONS.get(r["aggregation"], "not stated"),
             "acc": r["acc"], "uf1": r["uf1"], "uar": r["uar"]}
            for r in table.to_dict("records")]
    label = "this run (synthetic)" if dataset == "synth" else "this run"
    ours = {"kind": label, "dataset": DATASET_NAMES.get(dataset, dataset), "protocol": protocol,
            "source": "this study", "split": split}
    rows.append({**ours, "aggregation": AGGREGATIONS["pooled"] + " (MEGC; this study's headline)",
                 **{k: metrics[k] for k in METRICS}})
    if subject_mean is not None and (table["aggregation"] == "subject mean").any():
        rows.append({**ours, "aggregation": AGGREGATIONS["subject mean"] + " (the paper's aggregation)",
                     **{k: subject_mean[k] for k in METRICS}})
    return pd.DataFrame(rows)


def flag_keys(text) -> list[str]:
    """The keys of a ``flags`` cell (';'-separated, blanks ignored)."""
    return [f.strip() for f in str(text or "").split(";") if f.strip()]


def protocol_flags(row: dict, ours_epochs: int | None = None, paper_epochs: int | None = None) -> list[str]:
    """The protocol differences between a reported number and this study's run that matter
    for reading one beside the other, each in words: a fixed held-out split, per-subject
    averaging, label-derived (ground-truth AU) input, epochs picked on the test subject, and
    fewer epochs in our run (``ours_epochs``, that run's, below ``paper_epochs``, the paper
    profile's)."""
    split = str(row.get("split") or "").lower()
    flags = []
    if any(w in split for w in ("held-out", "holdout", "fixed")):
        flags.append("fixed held-out split (ours: LOSO)")
    if row.get("aggregation") == "subject mean":
        flags.append("per-subject averaging (ours: pooled)")
    keys = flag_keys(row.get("flags"))
    if "test-fold epoch selection" in split and "test_epochs" not in keys:
        keys.append("test_epochs")
    flags += [FLAGS[k] for k in keys]
    if isinstance(ours_epochs, (int, float)) and paper_epochs and ours_epochs < paper_epochs:
        flags.append(f"fewer epochs in our run ({int(ours_epochs)} of the paper's {int(paper_epochs)})")
    return flags


def reproduced(runs: list[dict], paper_epochs=None) -> list[dict]:
    """Reported vs reproduced: one row per reported number (every method's ``reported.csv``),
    beside this study's number on the same dataset and classes when such a run exists, and the
    protocol differences (:func:`protocol_flags`). ``runs``: metrics.json dicts; a SynthME
    run is never set beside a paper's number. A reference-network row takes the reference
    run's network named first in its source. ``paper_epochs(method, dataset, network)`` gives
    the paper profile's epochs (None: not known)."""
    table = load_reported()
    out = []
    for r in table.to_dict("records"):
        run = next((m for m in runs if m.get("method") == r["method"] and m.get("dataset") == r["dataset"]
                    and m.get("protocol") == r["protocol"] and m.get("dataset") != "synth"), None)
        ours = run
        if run is not None and r["method"] == "reference":
            name = str(r["source"]).split(",")[0].strip().lower()
            ours = next((n for n in run.get("networks") or [] if str(n.get("name", "")).lower() == name), None)
        paper, mine = None, None
        if ours is not None and paper_epochs is not None:
            network = ours.get("network") if r["method"] == "reference" else None
            paper = paper_epochs(r["method"], r["dataset"], network)
            mine = ours.get("epochs") if network else (run.get("params") or {}).get("epochs")
        out.append({"method": r["method"], "dataset": DATASET_NAMES.get(r["dataset"], r["dataset"]),
                    "classes": r["protocol"], "source": r["source"],
                    **{f"reported {k}": r[k] for k in METRICS},
                    **{f"ours {k}": (ours or {}).get(k) for k in METRICS},
                    "ours": "" if ours is not None else
                    f"no run on {DATASET_NAMES.get(r['dataset'], r['dataset'])} ({r['protocol']})",
                    "flags": protocol_flags(r, mine, paper)})
    return out
