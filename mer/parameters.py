"""Parameters checked where they enter: a name the notebook does not declare, or a value of a
kind the parameter does not take, is an error naming the parameter (and the nearest declared
name, or what it accepts), whether it came from a params file, ``mer study -p``, papermill's
``-p`` / ``-f`` or an edit of the parameters cell.

What a parameter accepts is read from its default in the notebook's parameters cell (an
integer takes an integer, a number a number, a switch True or False, a list a list, ...; a
default of None takes anything), plus the rules of :data:`RULES` for the parameters whose
values are words from a fixed set.
"""
from __future__ import annotations

import ast
import difflib
import re
from typing import Callable, Iterable

FOLDS = "'loso', an integer k >= 2 (grouped k-fold by subject), or 'holdout', 'holdout:N', 'holdout:N:S'"


def _folds(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value) >= 2
    return isinstance(value, str) and (value == "loso" or re.fullmatch(r"holdout(:\d+){0,2}", value) is not None)


def _device(value) -> bool:
    return isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value) is not None


# parameter -> (what it accepts, in words; the check)
RULES: dict[str, tuple[str, Callable[[object], bool]]] = {
    "folds": (FOLDS, _folds),
    "ablation_folds": (FOLDS, _folds),
    "device": ("'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", _device),
    "amp": ("'auto', 'bf16', 'fp16' or 'off'", lambda v: v in ("auto", "bf16", "fp16", "off")),
    "on_bad_frame": ("'drop' (a clip with an unreadable frame is left out, with its file and reason) or 'error'",
                     lambda v: v in ("drop", "error")),
    "workers": ("None, 'auto' or a number of processes >= 1",
                lambda v: v is None or v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
                or (isinstance(v, str) and v.isdigit() and int(v) >= 1)),
}


def nearest(name: str, declared: Iterable[str]) -> str | None:
    """The declared name closest to ``name`` (a typo's likely intent), or None."""
    found = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
    return found[0] if found else None


def check_names(names: Iterable[str], declared: Iterable[str], where: str) -> None:
    """Every name of ``names`` must be declared: else a ValueError naming it, ``where`` it came
    from and the nearest declared name."""
    declared = set(declared)
    unknown = [n for n in names if n not in declared]
    if not unknown:
        return
    lines = []
    for n in unknown:
        near = nearest(n, declared)
        lines.append(f"{n!r}" + (f" (did you mean {near!r}?)" if near else ""))
    raise ValueError(f"{where}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(lines)}; this "
                     f"notebook declares: {', '.join(sorted(declared))}")


def _kind(default) -> tuple[str, Callable[[object], bool]] | None:
    if default is None:
        return None
    if isinstance(default, bool):
        return "True or False", lambda v: isinstance(v, bool)
    if isinstance(default, int):
        return "an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))
    if isinstance(default, float):
        return "a number", lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
    if isinstance(default, str):
        return "a string", lambda v: v is None or isinstance(v, str)
    if isinstance(default, (list, tuple)):
        return "a list", lambda v: v is None or isinstance(v, (list, tuple))
    if isinstance(default, dict):
        return "a mapping (name: value)", lambda v: v is None or isinstance(v, dict)
    return None


def accepts(name: str, default) -> tuple[str, Callable[[object], bool]] | None:
    """What ``name`` takes (in words) and its check: its rule, else what its default's kind says."""
    return RULES.get(name) or _kind(default)


def check_values(values: dict, defaults: dict, where: str) -> None:
    """Each value must be of a kind its parameter takes (:func:`accepts`): else a ValueError
    naming every wrong one, with what it accepts."""
    wrong = []
    for name, value in values.items():
        rule = accepts(name, defaults.get(name))
        if rule is not None and not rule[1](value):
            hint = ""
            if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value.strip()):
                hint = f" (YAML reads {value} as text: write it with a decimal point, e.g. {float(value):.1e})"
            wrong.append(f"{name} = {value!r}: expected {rule[0]}{hint}")
    if wrong:
        raise ValueError(f"{where}: " + "; ".join(wrong))


def injected_names(history: Iterable[str]) -> list[str]:
    """The names papermill injected into a running notebook: the assignments of its
    ``# Parameters`` cell (``-p``, ``-f``, ``-y``, a params file through ``mer study``), read
    from the kernel's input history; none when the notebook was not run by papermill."""
    names = []
    for source in history:
        if not isinstance(source, str) or not source.lstrip().startswith("# Parameters"):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))
