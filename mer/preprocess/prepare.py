"""Cached, parallel preprocessing of a clip table.

- :func:`align_table`: detection + landmarks on each clip's onset frame (cached per clip),
  then one transform per clip with the fallbacks of :mod:`mer.preprocess.faces`; adds the
  columns ``face_found``, ``align_method``, ``align_matrix`` and ``landmarks_onset`` /
  ``landmarks_apex`` (68 x 2, in aligned coordinates).
- :func:`aligned_frames`: the aligned (or resized) frames of chosen frame numbers.
- :func:`clip_flow`: u, v and strain between two aligned frames.
Each per-clip result is cached (:class:`~mer.preprocess.cache.Cache`); ``workers`` > 1
spreads clips over processes.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd
from mer.progress import tqdm

from mer import landmarks as lm
from mer.preprocess import faces
from mer.preprocess.cache import LOOKUP_ONLY, Cache, CacheStats, NotCached
from mer.preprocess.flow import flow_uvs
from mer.preprocess.frames import frame_path, read_frame


# Workers start from a fresh server process, never forked from the caller: a notebook kernel
# that has already run torch (threads, OpenMP) or ARPACK hangs in forked children (seen when
# GAM-MM-MER prepared clips after training its magnifier).
POOL_CONTEXT = multiprocessing.get_context("forkserver")
POOL_CONTEXT.set_forkserver_preload(["mer.preprocess.prepare"])  # imported once, in the server


def _labelled(job: tuple[Callable, str, tuple]):
    fn, label, args = job
    try:
        return fn(args)
    except (ValueError, FileNotFoundError, cv2.error) as exc:
        raise ValueError(f"clip {label}: {exc}") from exc


def _clip_labels(clips: pd.DataFrame) -> list[str]:
    return [f"{r.dataset}/{r.subject}/{r.clip}" for r in clips.itertuples(index=False)]


def available_cores() -> int:
    """The CPU cores this process may use (its affinity, where the system says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _parallel(fn: Callable, items: Sequence, labels: Sequence[str], workers: int, desc: str,
              progress: bool) -> tuple[list, CacheStats]:
    """``fn`` over ``items`` in order, on ``workers`` processes; each call returns (value, stats).
    An error names the clip (``labels``) as well as the file."""
    results, stats = [], CacheStats()
    jobs = [(fn, label, item) for label, item in zip(labels, items)]
    bar = tqdm(total=len(items), desc=desc, disable=not progress or not items, leave=False)
    if workers <= 1 or len(items) < 2:
        for job in jobs:
            value, st = _labelled(job)
            results.append(value)
            stats = stats + st
            bar.update()
    else:  # what is cached is read here (starting a pool costs more than reading it); the rest goes to the pool
        results = [None] * len(jobs)
        todo = []
        token = LOOKUP_ONLY.set(True)
        try:
            for i, job in enumerate(jobs):
                try:
                    results[i], st = _labelled(job)
                except NotCached:
                    todo.append(i)
                    continue
                stats = stats + st
                bar.update()
        finally:
            LOOKUP_ONLY.reset(token)
        if todo:
            with ProcessPoolExecutor(max_workers=workers, mp_context=POOL_CONTEXT) as pool:
                chunk = max(1, len(todo) // (8 * workers))
                for i, (value, st) in zip(todo, pool.map(_labelled, [jobs[i] for i in todo], chunksize=chunk)):
                    results[i] = value
                    stats = stats + st
                    bar.update()
    bar.close()
    return results, stats


# ----------------------------------------------------------------------------- detection

def _detect_job(args: tuple[str, str, str | None, bool]):
    onset_path, apex_path, cache_dir, use_cache = args
    cache = Cache(cache_dir, enabled=use_cache)

    def compute() -> dict[str, np.ndarray]:
        cv2.setNumThreads(1)
        onset = read_frame(onset_path)
        det = faces.detect(onset)
        if det.box is None:
            return {"found": np.array(False), "shape": np.array(onset.shape[:2])}
        apex_pts = lm.landmarks(read_frame(apex_path), det.box)  # same box: the face barely moves
        return {"found": np.array(True), "upsampled": np.array(det.upsampled), "box": np.array(det.box),
                "onset": det.points, "apex": apex_pts, "shape": np.array(onset.shape[:2])}
    arrays = cache.get_or_compute("detect", [onset_path, apex_path], {"detector": "dlib-frontal+68"}, compute)
    return arrays, cache.stats


def align_table(clips: pd.DataFrame, size: int, iod: float = faces.IOD_FRACTION, eye_y: float = faces.EYE_Y,
                cache_dir: str | os.PathLike | None = None, use_cache: bool = True, workers: int = 1,
                progress: bool = True) -> tuple[pd.DataFrame, CacheStats]:
    """The clip table with alignment columns added (see module docstring)."""
    clips = clips.reset_index(drop=True)
    cache_dir = str(Cache(cache_dir).root)
    jobs = [(frame_path(r, r["onset"]), frame_path(r, r["apex"]), cache_dir, use_cache) for _, r in clips.iterrows()]
    found, stats = _parallel(_detect_job, jobs, _clip_labels(clips), workers, "detecting faces", progress)
    methods, matrices, on_pts, ap_pts = [], [], [], []
    last_by_subject: dict[str, tuple[np.ndarray, tuple]] = {}
    for (_, row), det, (onset_path, apex_path, _, _) in zip(clips.iterrows(), found, jobs):
        if bool(det["found"]):
            matrix = faces.similarity(det["onset"], size, iod, eye_y)
            method = "detect_upsampled" if bool(det["upsampled"]) else "detect"
            onset_raw, apex_raw = det["onset"], det["apex"]
            last_by_subject[row["subject"]] = (matrix, tuple(int(v) for v in det["box"]))
        else:
            if row["subject"] in last_by_subject:
                matrix, box = last_by_subject[row["subject"]]
                method = "subject_previous"
            else:
                matrix = faces.centred_crop(tuple(det["shape"]), size)
                box = faces.box_of(matrix, size)
                method = "centred_crop"
            # landmarks placed inside the box the fallback transform implies (flagged by the method)
            onset_raw = lm.landmarks(read_frame(onset_path), box)
            apex_raw = lm.landmarks(read_frame(apex_path), box)
        methods.append(method)
        matrices.append(np.round(matrix, 6))
        on_pts.append(faces.transform_points(onset_raw, matrix).astype(np.float32))
        ap_pts.append(faces.transform_points(apex_raw, matrix).astype(np.float32))
    out = clips.copy()
    out["face_found"] = [m.startswith("detect") for m in methods]
    out["align_method"] = methods
    out["align_matrix"] = matrices
    out["landmarks_onset"] = on_pts
    out["landmarks_apex"] = ap_pts
    return out, stats


# ----------------------------------------------------------------------------- frames and flow

def _load(path: str, matrix, size: int) -> np.ndarray:
    """One frame warped by ``matrix`` to size x size, or only resized when ``matrix`` is None."""
    if matrix is None:
        return read_frame(path, size)
    return faces.warp(read_frame(path), np.asarray(matrix), size)


def _matrix_key(matrix) -> list | None:
    return None if matrix is None else np.asarray(matrix).round(6).tolist()


def read_aligned(row, number: int, size: int, align: bool = True) -> np.ndarray:
    """One frame of a clip-table row (with ``align_matrix`` when ``align``), uncached: for figures."""
    return _load(frame_path(row, number), row["align_matrix"] if align else None, size)


def alignment_summary(clips: pd.DataFrame) -> pd.DataFrame:
    """Clips per alignment method (every fallback counted), for the notebooks' data summary."""
    counts = clips["align_method"].value_counts()
    order = [m for m in (*faces.METHODS, "resize") if m in counts.index]
    return counts.reindex(order).rename("clips").to_frame()


def _frames_job(args):
    paths, matrix, size, cache_dir, use_cache = args
    cache = Cache(cache_dir, enabled=use_cache)
    params = {"size": size, "matrix": _matrix_key(matrix)}

    def compute() -> dict[str, np.ndarray]:
        cv2.setNumThreads(1)
        return {"frames": np.stack([_load(p, matrix, size) for p in paths])}
    return cache.get_or_compute("frames", paths, params, compute)["frames"], cache.stats


def _flow_job(args):
    paths, matrix, size, method, cache_dir, use_cache = args
    cache = Cache(cache_dir, enabled=use_cache)
    params = {"size": size, "method": method, "matrix": _matrix_key(matrix)}

    def compute() -> dict[str, np.ndarray]:
        frames, _ = _frames_job((paths, matrix, size, cache_dir, use_cache))
        return {"uvs": flow_uvs(frames[0], frames[1], method)}
    return cache.get_or_compute("flow", paths, params, compute)["uvs"], cache.stats


def aligned_frames(clips: pd.DataFrame, numbers: Sequence[Sequence[int]], size: int, align: bool = True,
                   cache_dir=None, use_cache: bool = True, workers: int = 1, progress: bool = True,
                   desc: str = "aligning frames") -> tuple[list[np.ndarray], CacheStats]:
    """Per clip, uint8 (len(numbers[i]), size, size, 3) frames: aligned with the clip's
    ``align_matrix`` (from :func:`align_table`) or only resized when ``align`` is False."""
    cache_dir = str(Cache(cache_dir).root)
    jobs = []
    for (_, row), nums in zip(clips.iterrows(), numbers):
        matrix = row["align_matrix"] if align else None
        jobs.append(([frame_path(row, n) for n in nums], matrix, size, cache_dir, use_cache))
    return _parallel(_frames_job, jobs, _clip_labels(clips), workers, desc, progress)


def clip_flow(clips: pd.DataFrame, pairs: Sequence[tuple[int, int]], size: int, method: str = "tvl1",
              align: bool = True, cache_dir=None, use_cache: bool = True, workers: int = 1,
              progress: bool = True) -> tuple[list[np.ndarray], CacheStats]:
    """Per clip, (3, size, size) float32 u, v, strain from frame a to frame b of ``pairs``."""
    cache_dir = str(Cache(cache_dir).root)
    jobs = [([frame_path(row, a), frame_path(row, b)], row["align_matrix"] if align else None, size, method,
             cache_dir, use_cache) for (_, row), (a, b) in zip(clips.iterrows(), pairs)]
    return _parallel(_flow_job, jobs, _clip_labels(clips), workers, f"{method} flow", progress)
