"""Train ST-MEMM on procedural pairs and face pairs; weights cached under
``outputs/weights/`` keyed by a hash of the whole configuration, and reused when present
(``mer train-magnifier``).

The quick configuration's weights ship with the package (:data:`SHIPPED`,
``mer/magnify/weights/stmemm_<config hash>.pt``, 0.6 MB each): the configuration as it is
(Eq. 3 read as Oh et al.'s code) and with the paper's reading (``--manipulator paper``),
the two the GAM-MM-MER notebook sets side by side. A fresh clone's study reads them
instead of training each for 20-30 minutes on the CPU. A file is used only while its name
matches its configuration's hash (which includes the model's code version); they are
remade with ``mer train-magnifier --config quick [--manipulator paper] --weights-dir
mer/magnify/weights --retrain`` (:func:`shipped_configs`; ``mer bench magnifier`` times
that and compares the result with the shipped file).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from mer.progress import tqdm

from mer.magnify.face_pairs import FacePairConfig, cached_face_pairs
from mer.magnify.measure import check_pairs, magnification_check
from mer.magnify.pairs import PairConfig, cached_pairs
from mer.magnify.stmemm import CONFIGS, MODEL_VERSION, STMEMM
from mer.paths import content_key, replace_atomic


@dataclass(frozen=True)
class MagnifierConfig:
    model: str = "quick"                 # ST-MEMM size: quick | paper
    pairs: PairConfig = field(default_factory=lambda: PairConfig(size=48, supersample=8))
    n_pairs: int = 1500                  # procedural training pairs (generated once, cached)
    face_pairs: FacePairConfig = field(default_factory=lambda: FacePairConfig(crop=48))
    n_face_pairs: int = 1500             # face pairs beside them (0: procedural only, the earlier training)
    manipulator: str | None = None       # ST-MEMM settings replaced in the model's config (None: keep):
    residual: bool | None = None         #   paper | official; the decoder's residual to B; its skip
    skip: bool | None = None
    steps: int = 8000
    batch_size: int = 8
    lr: float = 1e-3                     # Adam, no weight decay (the paper: 1e-5, batch 4, on a GPU)
    schedule: str = "cosine"             # learning rate over the steps: constant | cosine (to 0)
    check_every: int = 500               # > 0: measure magnification on held-out pairs every this many steps
    check_pairs: int = 20                #   (that many pairs, alpha 5 and 10; recorded in the curve)
    reg: float = 0.0                     # lambda of the texture and shape consistency terms (see PAPER)
    seed: int = 0

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; use 'constant' or 'cosine'")

    def net(self) -> dict:
        """The ST-MEMM settings replaced in the model's config (:data:`NET_FIELDS` that are set)."""
        return {k: getattr(self, k) for k in NET_FIELDS if getattr(self, k) is not None}

    def key(self) -> str:
        """Hash of the configuration, the model's settings and its code version."""
        ident = {**asdict(self), "net": {**CONFIGS[self.model], **self.net()}, "version": MODEL_VERSION}
        return content_key(ident, 12)

    @classmethod
    def named(cls, name: str, steps: int | None = None, pairs: int | None = None, manipulator: str | None = None,
              faces: str | None = None, face_pairs: int | None = None) -> "MagnifierConfig":
        """The configuration called ``name`` ("quick": the defaults, "paper": :data:`PAPER`),
        with ``steps``, ``pairs`` (the number of procedural training pairs), ``manipulator``
        (paper | official), ``faces`` (a folder of the user's own neutral face photos for
        the face pairs; SynthME's ``--faces``) and ``face_pairs`` (their number) replaced
        when given."""
        configs = {"quick": cls(), "paper": PAPER}
        if name not in configs:
            raise ValueError(f"unknown magnifier config {name!r}; use one of {list(configs)}")
        cfg = configs[name]
        if steps is not None:
            cfg = replace(cfg, steps=int(steps))
        if pairs is not None:
            cfg = replace(cfg, n_pairs=int(pairs))
        if manipulator is not None:
            cfg = replace(cfg, manipulator=manipulator)
        if faces is not None:
            cfg = replace(cfg, face_pairs=replace(cfg.face_pairs, faces=str(faces)))
        if face_pairs is not None:
            cfg = replace(cfg, n_face_pairs=int(face_pairs))
        return cfg


NET_FIELDS = ("manipulator", "residual", "skip")  # MagnifierConfig fields that replace ST-MEMM settings


CHECK_ALPHAS = (5.0, 10.0)

PAPER = MagnifierConfig(model="paper", pairs=PairConfig(size=96, supersample=16), n_pairs=20000,
                        face_pairs=FacePairConfig(size=128, crop=96, identities=200), n_face_pairs=20000, steps=100000,
                        batch_size=4, lr=1e-5, schedule="constant", reg=0.1, check_every=5000, check_pairs=50)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


SHIPPED = Path(__file__).resolve().parent / "weights"  # the quick configuration's weights, in the package


def weights_path(cfg: MagnifierConfig, weights_dir: str | Path) -> Path:
    return Path(weights_dir) / f"stmemm_{cfg.key()}.pt"


def shipped_configs() -> dict[str, "MagnifierConfig"]:
    """The configurations whose weights ship: the quick one, and with Eq. 3 as written."""
    return {"quick": MagnifierConfig.named("quick"), "quick, paper's Eq. 3": MagnifierConfig.named("quick",
                                                                                                manipulator="paper")}


def shipped_path(cfg: MagnifierConfig) -> Path | None:
    """The package's own weights of ``cfg`` (the quick configuration's), or None."""
    path = weights_path(cfg, SHIPPED)
    return path if path.is_file() else None


def train_magnifier(cfg: MagnifierConfig, weights_dir: str | Path, cache_dir: str | Path, device: str = "auto",
                    progress: bool = True, retrain: bool = False) -> tuple[STMEMM, dict]:
    """The trained magnifier and its record {"config", "curve", "seconds"}: read from
    ``weights_dir`` when a run of the same configuration is there, else from the weights
    shipped with the package (:data:`SHIPPED`), trained otherwise or with ``retrain``."""
    from mer.train.engine import resolve_device
    path = weights_path(cfg, weights_dir)
    for found in () if retrain else (path, shipped_path(cfg)):
        if found is not None and found.is_file():
            try:
                return load_magnifier(found)
            except ValueError as e:  # truncated or foreign file: report it and train again
                print(f"[magnifier] {e}; training again")
    dev = resolve_device(device)
    sets = [cached_pairs(cfg.n_pairs, cfg.seed, cfg.pairs, cache_dir, progress=progress)]
    if cfg.n_face_pairs:
        if (cfg.face_pairs.crop or cfg.face_pairs.size) != cfg.pairs.size:
            raise ValueError(f"face pairs of {cfg.face_pairs.crop or cfg.face_pairs.size} px cannot share batches with "
                             f"procedural pairs of {cfg.pairs.size} px; set face_pairs.crop to {cfg.pairs.size}")
        sets.append(cached_face_pairs(cfg.n_face_pairs, cfg.seed, cfg.face_pairs, cache_dir, progress=progress))
    frames = {k: torch.cat([to_tensor(d[k]) for d in sets]) for k in ("A", "B", "C", "target")}
    alpha = torch.from_numpy(np.concatenate([d["alpha"] for d in sets]))
    n_total = len(alpha)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = STMEMM(cfg.model, **cfg.net()).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps) if cfg.schedule == "cosine" else None
    # held-out pairs for monitoring (seed 2: neither training pairs nor the notebook's check, seed 1)
    monitor = check_pairs(cfg.check_pairs, seed=2) if cfg.check_every else []
    curve, window, t0 = [], [], time.perf_counter()
    bar = tqdm(range(cfg.steps), desc="training ST-MEMM", disable=not progress)
    for step in bar:
        idx = torch.randint(0, n_total, (cfg.batch_size,), generator=gen)
        batch = [frames[k][idx].to(dev) for k in ("A", "B", "C", "target")]
        loss, parts = model.loss(*batch, alpha[idx].to(dev), reg=cfg.reg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        window.append(parts)
        if (step + 1) % 25 == 0 or step + 1 == cfg.steps:
            row = {"step": step + 1, **{k: float(np.mean([w[k] for w in window])) for k in window[0]}}
            if cfg.check_every and ((step + 1) % cfg.check_every == 0 or step + 1 == cfg.steps):
                model.eval()
                table = magnification_check(as_magnifier(model), monitor, CHECK_ALPHAS)
                row.update({f"ratio_a{a:g}": float(r) for a, r in zip(CHECK_ALPHAS, table["median ratio"])})
                model.train()
            curve.append(row)
            bar.set_postfix(l1=f"{row['l1']:.4f}")
            window = []
    record = {"config": asdict(cfg), "curve": curve, "seconds": round(time.perf_counter() - t0, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomic(path, lambda tmp: torch.save({**record, "state": {k: v.cpu() for k, v in model.state_dict().items()}}, tmp))
    return model.eval(), record


def where_from(cached: bool, shipped: Path | None, path: Path) -> str:
    if cached:
        return f"read from {path}"
    if shipped is not None:
        return f"read from the weights shipped with the package, {shipped}"
    return f"trained and saved to {path}"


def load_magnifier(path: str | Path) -> tuple[STMEMM, dict]:
    """An ST-MEMM checkpoint written by :func:`train_magnifier` (here or on another machine,
    e.g. the paper configuration trained on a GPU) and its record. Local files only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ST-MEMM weights {path} not found")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        record = {k: saved[k] for k in ("config", "curve", "seconds")}
        net = {k: record["config"][k] for k in NET_FIELDS if record["config"].get(k) is not None}
        model = STMEMM(record["config"]["model"], **net)
        model.load_state_dict(saved["state"])
    except Exception as e:
        raise ValueError(f"{path} is not a usable ST-MEMM checkpoint of this code version: {e}") from e
    return model.eval(), record


def as_magnifier(model: STMEMM, batch_size: int = 32):
    """``magnify(a, b, alpha)`` on uint8 (H, W, 3) frames, or stacks (N, H, W, 3); its
    ``key()`` names the magnifier by a digest of its weights (so node inputs made with other
    weights never share a cached run)."""
    dev = next(model.parameters()).device

    @torch.no_grad()
    def magnify(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
        single = a.ndim == 3
        a, b = (a[None], b[None]) if single else (a, b)
        outs = []
        for i in range(0, len(a), batch_size):
            out = model(to_tensor(a[i:i + batch_size]).to(dev), to_tensor(b[i:i + batch_size]).to(dev), alpha)
            outs.append(((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        res = np.concatenate(outs)
        return res[0] if single else res
    weights = content_key(sorted((k, hashlib.sha256(v.detach().cpu().numpy().tobytes()).hexdigest())
                                 for k, v in model.state_dict().items()), 16)
    magnify.key = lambda: {"magnifier": "ST-MEMM", "weights": weights}  # what its output depends on
    return magnify


@dataclass
class Prepared:
    """A magnifier ready for a run: the network on its device, ``magnify`` (the callable of
    :func:`as_magnifier`), its training record, ``source`` (its config name, or "loaded")
    and one line saying where it came from."""
    model: STMEMM
    magnify: object
    record: dict
    source: str
    note: str


def prepare(config: str = "quick", steps: int | None = None, pairs: int | None = None, weights: str | None = None,
            weights_dir: str | Path | None = None, cache_dir: str | Path | None = None, device: str = "auto",
            max_size: int | None = None, max_check_pairs: int | None = None, manipulator: str | None = None,
            face_pairs: int | None = None, faces: str | None = None) -> Prepared:
    """The ST-MEMM of a run: read from the checkpoint ``weights`` when given, else the
    configuration ``config`` (:meth:`MagnifierConfig.named` with ``steps``, ``pairs``,
    ``manipulator``, ``faces``; ``face_pairs`` the number of face pairs) trained once and
    cached under ``weights_dir`` (``outputs/weights``). ``max_size`` and ``max_check_pairs``
    cap the training pairs' image size and the monitor's check (a smoke run's)."""
    from mer.paths import outputs_dir
    from mer.preprocess.cache import default_root
    from mer.train.engine import resolve_device
    MagnifierConfig.named(config)  # an unknown name is an error even when a checkpoint is given
    if weights:
        model, record = load_magnifier(weights)
        source, note = "loaded", f"ST-MEMM loaded from {weights} (trained {record['config'].get('steps')} steps)"
    else:
        cfg = MagnifierConfig.named(config, steps, pairs, manipulator, faces, face_pairs)
        if max_size is not None:
            crop = min(cfg.face_pairs.crop or cfg.face_pairs.size, int(max_size))
            cfg = replace(cfg, pairs=replace(cfg.pairs, size=min(cfg.pairs.size, int(max_size))),
                          face_pairs=replace(cfg.face_pairs, crop=crop, size=max(crop, min(cfg.face_pairs.size, 64))))
        if max_check_pairs is not None:
            cfg = replace(cfg, check_pairs=min(cfg.check_pairs, int(max_check_pairs)))
        wdir = Path(weights_dir) if weights_dir else outputs_dir() / "weights"
        cached, shipped = weights_path(cfg, wdir).is_file(), shipped_path(cfg)
        model, record = train_magnifier(cfg, wdir, Path(cache_dir or default_root()) / "magnify", device=device)
        source = cfg.model
        net = {**CONFIGS[cfg.model], **cfg.net()}
        note = (f"ST-MEMM ({cfg.model}, manipulator {net['manipulator']}, residual {net['residual']}, skip "
                f"{net['skip']}; {cfg.n_pairs} procedural + {cfg.n_face_pairs} face pairs; {cfg.steps} steps, "
                f"batch {cfg.batch_size}, lr {cfg.lr}): "
                f"{where_from(cached, shipped, weights_path(cfg, wdir))}; "
                f"training took {record['seconds']} s")
    model = model.to(resolve_device(device))
    return Prepared(model, as_magnifier(model), record, source, note)
