"""The ``mer`` command: synth, data check, prepare, bench, train-magnifier, study, report."""
from __future__ import annotations

import argparse
import os
import sys


def _synth(a: argparse.Namespace) -> int:
    from mer.data.synth import SynthConfig, generate
    cfg = SynthConfig(subjects=a.subjects, clips_per_subject=a.clips_per_subject, seed=a.seed, mode=a.mode,
                      size=a.size, faces=a.faces, workers=a.workers)
    out = generate(a.out, cfg)
    print(f"SynthME ({a.mode}, synthetic) written to {out}")
    return 0


def _data_check(a: argparse.Namespace) -> int:
    from mer import data
    if a.dataset in data.PRETRAINING:
        table = data.load_pretraining(a.dataset, a.root, protocol=a.protocol, annotation=a.annotation)
    else:
        table = data.load(a.dataset, a.root, protocol=a.protocol, annotation=a.annotation)
    print(table.summary())
    return 0


def _prepare(a: argparse.Namespace) -> int:
    from mer import data
    from mer.preprocess import ClipDataset, prepare
    table = data.load(a.dataset, a.root, protocol=a.protocol, annotation=a.annotation)
    ds = ClipDataset(table.clips, a.recipe, size=a.size, T=a.T, align=not a.no_align, workers=a.workers,
                     cache_dir=a.cache_dir)
    print(f"{len(ds)} clips prepared ({a.recipe} @ {a.size}px); cache {ds.stats.hits} read, {ds.stats.misses} computed")
    print(prepare.alignment_summary(ds.clips).to_string())
    return 0


def _bench(a: argparse.Namespace) -> int:
    from mer.preprocess.bench import bench_preprocess
    r = bench_preprocess(a.root, a.dataset, size=a.size, T=a.T, workers=a.workers, out=a.out)
    print(f"align+crop: cold {r['cold_align_fps']:.1f} fps, warm {r['warm_align_fps']:.1f} fps; "
          f"TV-L1 flow: cold {r['cold_flow_fps']:.1f} fps, warm {r['warm_flow_fps']:.1f} fps")
    print(f"overall: cold {r['cold_fps']:.1f} fps, warm {r['warm_fps']:.1f} fps, warm/cold {r['ratio']:.1f}x"
          + (f"  -> {a.out}" if a.out else ""))
    return 0


def _bench_latency(a: argparse.Namespace) -> int:
    from mer.magnify.latency import bench_latency
    r = bench_latency(a.config, a.size, a.patch, device=a.device, repeats=a.repeats, onnx=not a.no_onnx, out=a.out)
    print(f"{r['what']}; {r['device']}; ST-MEMM {r['magnifier_config']} at {r['size']} px, GAM-MER patches {r['patch']} px")
    for row in r["rows"]:
        ms = f"{row['ms']:8.1f} ms" if row["ms"] is not None else "       -   "
        print(f"  {row['network']:8s} {row['mode']:9s} {ms}   (reported A10: {row['reported A10 ms']} ms)  {row['how']}")
    print(f"-> {a.out}")
    return 0


def _train_magnifier(a: argparse.Namespace) -> int:
    from mer.magnify.eulerian import magnify_pair
    from mer.magnify.measure import compare_magnifiers
    from mer.magnify.training import MagnifierConfig, as_magnifier, train_magnifier, weights_path
    from mer.paths import outputs_dir
    from mer.preprocess.cache import default_root
    cfg = MagnifierConfig.named(a.config, steps=a.steps, pairs=a.pairs, manipulator=a.manipulator, faces=a.faces,
                                face_pairs=a.face_pairs)
    weights = a.weights_dir or outputs_dir() / "weights"
    model, record = train_magnifier(cfg, weights, a.cache_dir or default_root() / "magnify", device=a.device)
    print(f"ST-MEMM ({cfg.model}, {cfg.steps} steps): {weights_path(cfg, weights)}; "
          f"final L1 {record['curve'][-1]['l1']:.4f}; trained in {record['seconds']} s")
    if a.check:
        table = compare_magnifiers({"ST-MEMM": as_magnifier(model), "Eulerian": magnify_pair}, a.check, seed=1)
        print(f"measured / requested motion (alpha * d) on {a.check} held-out pairs")
        print(table.to_string(index=False))
        from mer.magnify.measure import face_check
        faces = face_check({"ST-MEMM": as_magnifier(model)}, a.check)
        print(f"on {a.check} held-out face pairs per alpha (identities no training pair uses)")
        print(faces.round(3).to_string(index=False))
    return 0


def _param(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` with VALUE read as YAML (``epochs=3``, ``ablations=[T3]``, ``x=null``)."""
    import yaml
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), yaml.safe_load(value)


def _study(a: argparse.Namespace) -> int:
    from mer.study import run_study
    run_study(a.dataset, a.only, fresh=a.fresh, data_root=a.data_root, smoke=a.smoke, overrides=dict(a.param),
              variant=a.variant)
    return 0


def _report(a: argparse.Namespace) -> int:
    from mer.report.html import build_report
    print(build_report(smoke=a.smoke))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mer", description="Micro-expression recognition study")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate a SynthME dataset in CASME II's layout")
    s.add_argument("out")
    s.add_argument("--subjects", type=int, default=12)
    s.add_argument("--clips-per-subject", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--mode", choices=["micro", "macro"], default="micro")
    s.add_argument("--size", type=int, default=224, help="frame size in px (square)")
    s.add_argument("--faces", default=None, help="folder of neutral frontal face photos (default: astronaut)")
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.set_defaults(func=_synth)

    d = sub.add_parser("data", help="inspect a dataset")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="print clips, subjects, class counts and every dropped row")
    c.add_argument("root")
    c.add_argument("--dataset", default="casme2", help="a dataset, or a pre-training set (ckplus, mmew_macro, ...)")
    c.add_argument("--protocol", default=None)
    c.add_argument("--annotation", default=None, help="the annotation sheet, when discovery is not enough")
    c.set_defaults(func=_data_check)

    pr = sub.add_parser("prepare", help="align, crop and cache a dataset's clips ahead of a run")
    pr.add_argument("root", nargs="?", default=None, help="dataset root (synth: default quick set)")
    pr.add_argument("--dataset", default="synth")
    pr.add_argument("--protocol", default=None)
    pr.add_argument("--annotation", default=None)
    pr.add_argument("--recipe", default="diff", help="diff | apex | onset | pair | sequence | flow | regions")
    pr.add_argument("--size", type=int, default=112)
    pr.add_argument("--T", type=int, default=8, help="frames per clip (sequence recipe)")
    pr.add_argument("--no-align", action="store_true", help="resize only")
    pr.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    pr.add_argument("--cache-dir", default=None, help="default: $MER_CACHE or outputs/cache")
    pr.set_defaults(func=_prepare)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench_command", required=True)
    bp = bsub.add_parser("preprocess", help="align+crop and TV-L1 frames per second, cold vs warm cache")
    bp.add_argument("--root", default=None, help="dataset root (default: a small SynthME set made on the fly)")
    bp.add_argument("--dataset", default="synth")
    bp.add_argument("--size", type=int, default=112)
    bp.add_argument("--T", type=int, default=16)
    bp.add_argument("--workers", type=int, default=1)
    bp.add_argument("--out", default=None, help="write the JSON result here")
    bp.set_defaults(func=_bench)
    bl = bsub.add_parser("latency", help="p2 Table 5: ST-MEMM and GAM-MER ms per clip (PyTorch, ONNX Runtime, fp16 on "
                                         "CUDA)")
    bl.add_argument("--config", choices=("quick", "paper"), default="paper", help="ST-MEMM configuration")
    bl.add_argument("--size", type=int, default=224, help="face size in px (the paper profiles: 224)")
    bl.add_argument("--patch", type=int, default=48, help="GAM-MER region patch in px (the paper profiles: 48)")
    bl.add_argument("--device", default="auto")
    bl.add_argument("--repeats", type=int, default=10)
    bl.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime timing")
    bl.add_argument("--out", default="outputs/bench/latency.json", help="write the JSON result here")
    bl.set_defaults(func=_bench_latency)

    tm = sub.add_parser("train-magnifier", help="train p2's ST-MEMM on procedural pairs (weights cached by config)")
    tm.add_argument("--config", choices=("quick", "paper"), default="quick")
    tm.add_argument("--steps", type=int, default=None, help="override the configuration's training steps")
    tm.add_argument("--pairs", type=int, default=None, help="override the number of procedural training pairs")
    tm.add_argument("--face-pairs", type=int, default=None, help="override the number of face training pairs")
    tm.add_argument("--faces", default=None,
                    help="folder of neutral frontal face photos for the face pairs (default: the astronaut)")
    tm.add_argument("--manipulator", choices=("paper", "official"), default=None,
                    help="Eq. 3 as written (paper) or Oh et al.'s code (official); default: the config's")
    tm.add_argument("--weights-dir", default=None, help="default: outputs/weights")
    tm.add_argument("--cache-dir", default=None, help="procedural pairs cache (default: the preprocessing cache)")
    tm.add_argument("--device", default="auto")
    tm.add_argument("--check", type=int, default=30, help="held-out pairs for the alpha*d check (0: skip)")
    tm.set_defaults(func=_train_magnifier)

    st = sub.add_parser("study", help="run every notebook with its params for a dataset, then the report")
    st.add_argument("--dataset", default="synth")
    st.add_argument("--only", nargs="*", default=None, help="method ids to run (default: all)")
    st.add_argument("--variant", default=None,
                    help="run the params files <dataset>.<VARIANT>.yaml (e.g. 4class for CAS(ME)^3's 4 classes)")
    st.add_argument("--fresh", action="store_true", help="delete previous outputs of these runs first")
    st.add_argument("--data-root", default=None, help="overrides data_root of every params file")
    st.add_argument("--smoke", action="store_true",
                    help="check the setup: the same notebooks and params with the compute shrunk (1 epoch, 2-fold "
                         "ablations, 32 px), into outputs/smoke/ with its own report")
    st.add_argument("-p", "--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
                    help="override one parameter of every notebook run (YAML value), e.g. -p macro_root=/data/CK+")
    st.set_defaults(func=_study)

    r = sub.add_parser("report", help="rebuild outputs/report.html from the finished runs")
    r.add_argument("--smoke", action="store_true", help="the smoke runs' report, outputs/smoke/report.html")
    r.set_defaults(func=_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, FileExistsError) as exc:
        print(f"mer {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
