"""The ``mer`` command: synth, data check, prepare, bench, train-magnifier, study, report."""
from __future__ import annotations

import argparse
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
    if not a.deep:
        return 0
    from mer.data.clips import deep_check
    problems = deep_check(table.clips, workers=a.workers)
    frames = int(sum(len(f) for f in table.clips["frames"]))
    if not problems:
        print(f"deep check: all {frames} frames of {len(table.clips)} clips decode")
        return 0
    print(f"deep check: {len(problems)} of {frames} frames cannot be read:")
    for p in problems:
        print(f"  {p['subject']}/{p['clip']}: {p['path']}: {p['problem']}")
    return 1


def _prepare(a: argparse.Namespace) -> int:
    from mer import data
    from mer.preprocess import ClipDataset, prepare
    table = data.load(a.dataset, a.root, protocol=a.protocol, annotation=a.annotation)
    from mer.train.parallel import available_cores
    ds = ClipDataset(table.clips, a.recipe, size=a.size, T=a.T, align=not a.no_align,
                     workers=a.workers or available_cores(),
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


def _bench_models(a: argparse.Namespace) -> int:
    from mer.bench.latency import bench_models
    r = bench_models(a.dataset, device=a.device, repeats=a.repeats, onnx=not a.no_onnx, out=a.out)
    print(f"{r['device']} -> {a.out}")
    return 0


def _bench_gpu(a: argparse.Namespace) -> int:
    from mer.bench.gpu import bench_gpu
    r = bench_gpu(a.out, steps=a.steps, only=a.only)
    if not r["cuda"]:
        print(f"mer bench gpu: {r['note']}")
        return 0
    for row in r["rows"]:
        if "error" in row:
            print(f"{row['params']:42s} FAILED: {row['error']}")
        else:
            print(f"{row['params']:42s} {row['s_per_step'] * 1000:8.1f} ms/step (data {row['data_share']:.0%}), "
                  f"peak {row['peak_GiB']:.2f} GiB, LOSO ~{row['projected_hours']:.1f} h")
    print(f"{r['machine']['gpu']} -> {a.out}")
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


def _bench_study(a: argparse.Namespace) -> int:
    from mer.bench.study import bench_study
    r = bench_study(a.repo, a.scratch, speedup=not a.no_speedup, out=a.out, seed_weights=a.seed_weights)
    for run in ("cold", "warm"):
        times = ", ".join(f"{m} {s} s" for m, s in r[run]["notebooks"].items())
        print(f"{run}: {r[run]['seconds']:.0f} s ({times})")
    for row in r.get("fold_parallel", {}).get("runs", []):
        print(f"baseline LOSO on {row['workers']} worker(s): {row['seconds']:.0f} s, speedup {row['speedup']:.2f}x, "
              f"same predictions as on 1: {row['same_predictions_as_1']}")
    print(f"-> {a.out}")
    return 0


def _bench_magnifier(a: argparse.Namespace) -> int:
    from mer.bench.magnifier import bench_magnifier
    r = bench_magnifier(a.out, device=a.device, steps=a.steps, check=a.check, manipulator=a.manipulator)
    print(f"quick ST-MEMM ({r['config']}, {r['steps']} steps) remade in {r['seconds']:.0f} s "
          f"(training {r['training_seconds']:.0f} s); same weights as shipped: {r.get('same_weights_as_shipped')}")
    for row in r.get("check", []):
        print(f"  {row}")
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
    model, record = train_magnifier(cfg, weights, a.cache_dir or default_root() / "magnify", device=a.device,
                                    retrain=a.retrain)
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
    overrides = dict(a.param)
    if a.workers is not None:
        overrides["workers"] = a.workers
    if a.scheduler is not None:
        overrides["dask_scheduler"] = a.scheduler
    run_study(a.dataset, a.only, fresh=a.fresh, data_root=a.data_root, smoke=a.smoke, overrides=overrides,
              variant=a.variant, seeds=a.seeds, test_epochs=not a.no_test_epochs, sweep=a.sweep)
    return 0


def _report(a: argparse.Namespace) -> int:
    from mer.report.html import build_report
    print(build_report(smoke=a.smoke))
    return 0


def _timing_args(parser: argparse.ArgumentParser, out: str) -> None:
    """The options every latency bench takes: device, repeats, --no-onnx and its JSON file."""
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime timing")
    parser.add_argument("--out", default=out, help="write the JSON result here")


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
    c.add_argument("--deep", action="store_true",
                   help="also decode every frame of every clip (in parallel) and list those that cannot be read; "
                        "exit status 1 when any")
    c.add_argument("--workers", type=int, default=None, help="threads for --deep (default: one per core)")
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
    pr.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    pr.add_argument("--cache-dir", default=None, help="default: $MER_CACHE or outputs/cache")
    pr.set_defaults(func=_prepare)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench_command", required=True)
    bp = bsub.add_parser("preprocess", help="align+crop and TV-L1 frames per second, cold vs warm cache")
    bp.add_argument("--root", default=None, help="dataset root (default: a small SynthME set made on the fly)")
    bp.add_argument("--dataset", default="synth")
    bp.add_argument("--size", type=int, default=112)
    bp.add_argument("--T", type=int, default=16)
    bp.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    bp.add_argument("--out", default=None, help="write the JSON result here")
    bp.set_defaults(func=_bench)
    ba = bsub.add_parser("latency", help="every model's ms per clip at a dataset's paper sizes: PyTorch eager, ONNX "
                                         "Runtime, bf16/fp16 on CUDA")
    ba.add_argument("--dataset", default="casme2", help="whose params files give the sizes (default: casme2)")
    _timing_args(ba, "outputs/bench/latency.json")
    ba.set_defaults(func=_bench_models)
    bg = bsub.add_parser("gpu", help="the paper profiles on CUDA: s/step, peak memory, data share, projected LOSO hours")
    bg.add_argument("--steps", type=int, default=5, help="timed training steps per params file")
    bg.add_argument("--only", nargs="*", default=None, help="method ids (default: all)")
    bg.add_argument("--out", default="outputs/bench/gpu.json", help="write the JSON result here")
    bg.set_defaults(func=_bench_gpu)
    bl = bsub.add_parser("table5", help="p2 Table 5: ST-MEMM and GAM-MER ms per clip (PyTorch, ONNX Runtime, fp16 on "
                                        "CUDA) beside the paper's reported A10 numbers")
    bl.add_argument("--config", choices=("quick", "paper"), default="paper", help="ST-MEMM configuration")
    bl.add_argument("--size", type=int, default=224, help="face size in px (the paper profiles: 224)")
    bl.add_argument("--patch", type=int, default=48, help="GAM-MER region patch in px (the paper profiles: 48)")
    _timing_args(bl, "outputs/bench/table5.json")
    bl.set_defaults(func=_bench_latency)

    bs = bsub.add_parser("study", help="cold and warm `mer study` per notebook, and the fold-parallel speedup")
    bs.add_argument("--repo", default=None, help="the checkout to time (default: this one; another commit for "
                                                 "'before' numbers)")
    bs.add_argument("--scratch", default=None, help="folder for the runs' outputs (default: a temporary one)")
    bs.add_argument("--no-speedup", action="store_true", help="skip the baseline's LOSO on 1 and 2 fold workers")
    bs.add_argument("--seed-weights", default=None,
                    help="copy these ST-MEMM weights (stmemm_*.pt) into the cold run's outputs/weights first (for a "
                         "commit that did not ship them; their recorded training time goes into the JSON)")
    bs.add_argument("--out", default="outputs/bench/study.json", help="write the JSON result here")
    bs.set_defaults(func=_bench_study)
    bm = bsub.add_parser("magnifier", help="remake the shipped quick ST-MEMM weights from scratch, timed and compared")
    bm.add_argument("--steps", type=int, default=None, help="override the training steps (a shorter check)")
    bm.add_argument("--check", type=int, default=30, help="held-out pairs for the alpha*d comparison (0: skip)")
    bm.add_argument("--manipulator", choices=("paper", "official"), default=None,
                    help="the shipped weights with this reading of Eq. 3 (default: the quick config's)")
    bm.add_argument("--device", default="auto")
    bm.add_argument("--out", default="outputs/bench/magnifier.json", help="write the JSON result here")
    bm.set_defaults(func=_bench_magnifier)

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
    tm.add_argument("--retrain", action="store_true",
                    help="train even when weights of this configuration exist (in --weights-dir or shipped); "
                         "remakes the shipped quick weights with --config quick --weights-dir mer/magnify/weights")
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
    st.add_argument("--workers", default=None,
                    help="processes for preprocessing and folds in every notebook (default: one per core; 1: all in "
                         "the notebook's process)")
    st.add_argument("--scheduler", default=None,
                    help="a Dask scheduler address (tcp://host:8786): train the folds on that cluster "
                         "(also $MER_SCHEDULER)")
    st.add_argument("--seeds", type=int, default=None, metavar="N",
                    help="rerun every main run with training seeds 0..N-1 (the same folds): the report's seed spread "
                         "(default: each params file's seeds, one seed in the quick profiles)")
    st.add_argument("--no-test-epochs", action="store_true",
                    help="leave the test-epoch diagnostic off (on in a study: each epoch's test-fold predictions are "
                         "kept to measure what picking an epoch on the test subject would report; never used to train)")
    st.add_argument("--sweep", action="store_true",
                    help="also run the amplitude sweep (notebooks/07_sweep.ipynb: every method on SynthME "
                         "at five motion amplitudes, grouped k-fold); left out of the default study for its time")
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
