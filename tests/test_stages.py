"""Data flows one way through the package's stages: no module imports (at module level or
inside a function) from a later stage."""
import ast

from mer.paths import project_root

# base (paths, landmarks) < data < preprocess < models < train < magnify < report < the run layer
STAGE = {"paths": 0, "landmarks": 0, "machine": 0, "progress": 0, "data": 1, "preprocess": 2, "models": 3, "train": 4, "magnify": 5, "report": 6,
         "notebook": 7, "study": 7, "cli": 7, "bench": 7, "sweep": 7, "parameters": 7}


def _stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGE[parts[1]] if parts[0] == "mer" and len(parts) > 1 else None


def _imports(tree: ast.AST, package: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node.lineno, [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield node.lineno, [f"mer.{a.name}" for a in node.names] if base == "mer" else [base]


def test_no_module_imports_from_a_later_stage():
    root = project_root()
    files = sorted((root / "mer").rglob("*.py"))
    assert len(files) > 40
    later = []
    for path in files:
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        own = _stage(module)
        if own is None:  # mer/__init__.py
            continue
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for line, targets in _imports(ast.parse(path.read_text()), package):
            later += [f"{path.relative_to(root)}:{line} imports {t}" for t in targets
                      if (_stage(t) or 0) > own]
    assert not later, later
    assert set(STAGE) >= {p.stem for p in (root / "mer").iterdir() if p.stem != "__init__" and p.suffix in ("", ".py")
                          and not p.name.startswith("__")}, "a new top-level module: give it a stage"
