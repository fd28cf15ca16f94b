"""Nothing is fetched at run time: a notebook runs to the end in a kernel (and Dask workers)
where every socket connection outside loopback is refused, by an audit hook installed at
interpreter start; and the libraries that could reach a hub are told they are offline."""
import json
import os
import subprocess
import sys
import textwrap

from mer.paths import project_root
from mer.study import execute

HOOK = textwrap.dedent('''
    """Installed by tests/test_offline.py: refuse and record every connection that leaves loopback."""
    import os, socket, sys

    _LOG = os.environ["MER_NET_LOG"]
    _LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")

    def _local(host):
        return isinstance(host, str) and (host.startswith(_LOOPBACK) or host == "")

    def _hook(event, args):
        host = None
        if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
            host = args[1][0]
        elif event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
        if host is not None and not _local(host):
            with open(_LOG, "a") as fh:
                fh.write(f"{os.getpid()} {event} {host}\\n")
            raise PermissionError(f"network access refused by the test's audit hook: {event} {host}")

    sys.addaudithook(_hook)
    with open(_LOG + ".loaded", "a") as fh:
        fh.write(f"{os.getpid()}\\n")
''')


def _offline_env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "net.log"
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "MER_NET_LOG": str(log)}, log


def test_the_hook_refuses_a_connection_outside_loopback(tmp_path):
    env, log = _offline_env(tmp_path)
    code = ("import socket\ntry:\n    socket.create_connection(('93.184.216.34', 80), timeout=2)\n"
            "except PermissionError as e:\n    print('refused', e)\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)
    assert "refused" in done.stdout, done.stdout + done.stderr
    assert "93.184.216.34" in log.read_text()


def test_a_notebook_runs_with_the_network_refused(tmp_path, monkeypatch):
    from tests.test_notebook import tiny_synth
    env, log = _offline_env(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # the kernel and its Dask workers inherit them
    data_root = tiny_synth(tmp_path)
    run_dir = tmp_path / "outputs" / "synth" / "baseline"
    params = {"dataset": "synth", "data_root": str(data_root), "input_size": 32, "epochs": 1, "batch_size": 8,
              "ablations": [], "output_dir": str(run_dir), "workers": 2, "cache_dir": str(tmp_path / "cache")}
    execute(project_root() / "notebooks" / "00_baseline.ipynb", run_dir / "00_baseline.ipynb", params,
            progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["n_clips"] == 12
    pids = set((tmp_path / "net.log.loaded").read_text().split())
    assert len(pids) >= 3, "the hook was not installed in the kernel and its two Dask workers"
    assert not log.exists(), f"connections outside loopback were attempted: {log.read_text()}"


def test_hubs_are_told_they_are_offline():
    import mer  # noqa: F401  (sets the defaults)
    code = "import mer, os; print(os.environ['HF_HUB_OFFLINE'])"
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=project_root())
    assert done.stdout.strip() == "1", done.stderr
