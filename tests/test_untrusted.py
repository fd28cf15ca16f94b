"""Untrusted files stay data: every ``torch.load`` in the package reads weights only
(``weights_only=True``: a checkpoint cannot run code), YAML is read with the safe loader,
nothing unpickles a file, and no subprocess is given a shell string. Checked by reading the
package's source, so a new call site that breaks a rule fails here."""
import ast

from mer.paths import project_root


def _calls():
    root = project_root() / "mer"
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                yield path.relative_to(project_root()), node


def _name(func: ast.AST) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_torch_load_reads_weights_only_and_yaml_is_read_safely():
    loads, problems = 0, []
    for path, node in _calls():
        name = _name(node.func)
        where = f"{path}:{node.lineno} {name}"
        if name == "torch.load":
            loads += 1
            flag = _keyword(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{where} without weights_only=True")
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            problems.append(f"{where}: use yaml.safe_load")
        if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load", "np.load", "numpy.load"):
            allow = _keyword(node, "allow_pickle")
            if name.endswith("np.load") or name.endswith("numpy.load"):
                if not (isinstance(allow, ast.Constant) and allow.value is False):
                    problems.append(f"{where} without allow_pickle=False")
            else:
                problems.append(f"{where}: unpickling a file can run code")
    assert loads >= 4, "the scan found too few torch.load calls: it is not reading the package"
    assert not problems, problems


def test_no_subprocess_gets_a_shell_string():
    problems, runs = [], 0
    for path, node in _calls():
        name = _name(node.func)
        where = f"{path}:{node.lineno} {name}"
        if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            problems.append(f"{where} runs a shell")
        if name.startswith("subprocess.") and name.split(".")[-1] in ("run", "Popen", "call", "check_call",
                                                                       "check_output"):
            runs += 1
            shell = _keyword(node, "shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                problems.append(f"{where} with shell=")
            if node.args and not isinstance(node.args[0], (ast.List, ast.Tuple, ast.Name)):
                problems.append(f"{where}: the command is not an argument list")
    assert runs >= 2 and not problems, problems
