"""Numbers the papers report, kept apart from ours and always labelled "reported".

Each entry names the paper, table, dataset and protocol so no reported number can be
read as one of this study's results.
"""
from __future__ import annotations

import pandas as pd

# acc and uar in [0, 1]; f1 as the paper gives it (p5's "F1-score" is its UF1-style macro F1).
REPORTED: list[dict] = [
    {"method": "baseline", "dataset": "casme2", "source": "p5 (CVA+FPF) Table 2, Baseline(ResNet)",
     "protocol": "casme2-5", "acc": 0.8112, "uf1": 0.7582, "uar": None},
    {"method": "baseline", "dataset": "samm", "source": "p5 (CVA+FPF) Table 2, Baseline(ResNet)",
     "protocol": "samm-5", "acc": 0.7353, "uf1": 0.6345, "uar": None},
    # p5 CVA + FPF + AU vector (accuracy in %, F1 as a fraction in the paper); 5 classes, LOSO
    *[{"method": "cva_fpf", "dataset": ds, "source": f"p5 {src}", "protocol": f"{ds}-5", "acc": acc, "uf1": f1,
       "uar": None}
      for src, c2, sm in [
          ("Table 1/2, CVA+FPF+AU (the full model)", (0.9435, 0.9402), (0.8673, 0.8171)),
          ("Table 2, CVA block", (0.8468, 0.8284), (0.7669, 0.6633)),
          ("Table 2, FPF block", (0.8952, 0.8543), (0.8120, 0.7067)),
          ("Table 2, AU Embedding", (0.8992, 0.8639), (0.8195, 0.7428)),
          ("Table 3, horizontal attention (X)", (0.8468, 0.8234), (0.7820, 0.6927)),
          ("Table 3, both directions (X+Y)", (0.9274, 0.9276), (0.8571, 0.7845)),
          ("Table 4, independent attention", (0.9194, 0.921), (0.8271, 0.7892)),
          ("Table 5, FPF on ViT", (0.9112, 0.9014), (0.8346, 0.8025)),
          ("Table 6, apex input", (0.9073, 0.9113), (0.8496, 0.7845)),
          ("Table 6, onset input", (0.9113, 0.9112), (0.8571, 0.7932)),
          # Table 7 prints F1 0.9112 for "with AU" on CASME II where Tables 1-6 print 0.9402
          # for the same model; both as printed
          ("Table 7, without AU embedding", (0.8952, 0.9014), (0.8120, 0.7519)),
          ("Table 7, with AU embedding", (0.9435, 0.9112), (0.8673, 0.8171)),
      ] for ds, (acc, f1) in (("casme2", c2), ("samm", sm))],
    # p4 ATM-GCN (percentages in the paper)
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table I, ATM-GCN, 7 classes", "protocol": "casme3-7",
     "acc": None, "uf1": 0.4308, "uar": 0.4283},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table I, ATM-GCN, 4 classes", "protocol": "casme3-4",
     "acc": None, "uf1": 0.5423, "uar": 0.5349},
    {"method": "atm_gcn", "dataset": "composite", "source": "p4 Table II, ATM-GCN", "protocol": "composite-3",
     "acc": None, "uf1": 0.9120, "uar": 0.9022},
    {"method": "atm_gcn", "dataset": "casme2", "source": "p4 Table III, ATM-GCN, 3 classes",
     "protocol": "casme2-megc", "acc": 0.9042, "uf1": 0.9048, "uar": None},
    {"method": "atm_gcn", "dataset": "samm", "source": "p4 Table III, ATM-GCN, 3 classes", "protocol": "composite-3",
     "acc": 0.8049, "uf1": 0.7920, "uar": None},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table IV ablation, w/o GCN, 7 classes",
     "protocol": "casme3-7", "acc": None, "uf1": 0.2888, "uar": 0.2842},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table IV ablation, w/o motion, 7 classes",
     "protocol": "casme3-7", "acc": None, "uf1": 0.3737, "uar": 0.3719},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table IV ablation, w/o ATM, 7 classes",
     "protocol": "casme3-7", "acc": None, "uf1": 0.4039, "uar": 0.4012},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table IV ablation, w/o GCN, 4 classes",
     "protocol": "casme3-4", "acc": None, "uf1": 0.4110, "uar": 0.4215},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table IV ablation, w/o motion, 4 classes",
     "protocol": "casme3-4", "acc": None, "uf1": 0.4901, "uar": 0.5052},
    {"method": "atm_gcn", "dataset": "casme3", "source": "p4 Table IV ablation, w/o ATM, 4 classes",
     "protocol": "casme3-4", "acc": None, "uf1": 0.5220, "uar": 0.5279},
]

DATASET_NAMES = {"synth": "SynthME (synthetic)", "casme2": "CASME II", "samm": "SAMM", "smic": "SMIC",
                 "casme_sq": "CAS(ME)^2", "casme3": "CAS(ME)^3", "mmew": "MMEW", "composite": "MEGC 2019 composite"}


def reported(method: str) -> pd.DataFrame:
    rows = [r for r in REPORTED if r["method"] == method]
    return pd.DataFrame(rows, columns=["method", "dataset", "source", "protocol", "acc", "uf1", "uar"])


def compare(method: str, dataset: str, protocol: str, metrics: dict) -> pd.DataFrame:
    """One table: each reported number (labelled, with its dataset) and this run's number."""
    rows = [{"kind": "reported", "dataset": DATASET_NAMES.get(r["dataset"], r["dataset"]),
             "protocol": r["protocol"], "source": r["source"], "acc": r["acc"], "uf1": r["uf1"], "uar": r["uar"]}
            for r in REPORTED if r["method"] == method]
    label = "this run (synthetic)" if dataset == "synth" else "this run"
    rows.append({"kind": label, "dataset": DATASET_NAMES.get(dataset, dataset), "protocol": protocol,
                 "source": "this study, LOSO, pooled", "acc": metrics["acc"], "uf1": metrics["uf1"],
                 "uar": metrics["uar"]})
    return pd.DataFrame(rows)
