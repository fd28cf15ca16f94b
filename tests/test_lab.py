"""`make lab` serves JupyterLab with the kernel "Python (mer)", as root (a GPU container runs it
so) and as an ordinary user: the test starts it through make, lists the kernels and opens a
notebook through the server's API, then stops it."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mer.paths import project_root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _serve(home: Path, prefix: list[str] = ()) -> tuple[dict, dict]:
    port, token = _free_port(), "mer-test-token"
    env = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_CONFIG_DIR": str(home / "config")}
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} --ServerApp.open_browser=False"
    proc = subprocess.Popen([*prefix, "make", "-s", "-C", str(project_root()), "lab", f"LAB_ARGS={args}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                specs = _get(f"{base}/api/kernelspecs", token)
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(f"make lab exited {proc.returncode}: {proc.stdout.read()[-3000:]}")
                if time.time() > deadline:
                    raise AssertionError("make lab did not serve within 120 s")
                time.sleep(1)
        notebook = _get(f"{base}/api/contents/00_baseline.ipynb?content=1", token)
        return specs, notebook
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop make and the server it started (its whole process group)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _check(specs: dict, notebook: dict) -> None:
    assert "mer" in specs["kernelspecs"], sorted(specs["kernelspecs"])
    assert specs["kernelspecs"]["mer"]["spec"]["display_name"] == "Python (mer)"
    assert notebook["type"] == "notebook" and notebook["content"]["metadata"]["kernelspec"]["name"] == "mer"
    cells = notebook["content"]["cells"]
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)


def test_make_lab_serves_the_mer_kernel_and_the_notebooks(tmp_path):
    _check(*_serve(tmp_path))


def _user_can_run_the_venv() -> bool:
    """From root, whether user nobody can start this environment's Python (not where the
    interpreter lives in root's home, as on this project's machines)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return False
    python = project_root() / ".venv" / "bin" / "python"
    done = subprocess.run(["runuser", "-u", "nobody", "--", str(python), "-c", "pass"], capture_output=True)
    return done.returncode == 0


def test_make_lab_passes_allow_root_only_as_root(tmp_path):
    """The command make runs: --allow-root for root, nothing extra for a user (``id`` faked)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake / "id").chmod(0o755)
    commands = {}
    for who, path in (("user", f"{fake}:{os.environ['PATH']}"), ("me", os.environ["PATH"])):
        done = subprocess.run(["make", "-s", "-n", "-C", str(project_root()), "--no-print-directory", "lab"],
                              env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        commands[who] = done.stdout.strip().splitlines()[-1]
    assert "jupyter lab notebooks" in commands["user"] and "--allow-root" not in commands["user"]
    assert ("--allow-root" in commands["me"]) == (os.geteuid() == 0)


@pytest.mark.skipif(not _user_can_run_the_venv(),
                    reason="needs root, runuser and an environment an ordinary user can run")
def test_make_lab_as_an_ordinary_user(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(tmp_path, 0o755)
    shutil.chown(home, "nobody")
    _check(*_serve(home, ["runuser", "-u", "nobody", "--"]))
