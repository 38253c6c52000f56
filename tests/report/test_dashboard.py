"""`tunelab dashboard` as a real server on a real study: pages over HTTP, study files read-only,
every way out of the study folder refused, bound to 127.0.0.1 unless --host says otherwise.

The two dashboards (127.0.0.1 and --host 0.0.0.0) run as real `tunelab dashboard` processes,
side by side since each spends seconds importing torch; the refusals run the CLI in-process.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tunelab
from tunelab.cli import main

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("tunelab"))
SPEC = {
    "name": "dash",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 3, "batch_size": 16},
    "tune": {
        "trials": 3,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
        "refit": False,  # the dashboard shows the search; no need to wait for a refit
    },
}
SECRET = "tunelab-dashboard-secret-7f3a9c"
TRAVERSALS = [
    "/files/../secret.txt",
    "/files/%2e%2e/secret.txt",
    "/files/%2E%2E/secret.txt",
    "/files/%252e%252e/secret.txt",
    "/files/%25252e%25252e/secret.txt",
    "/files/trials/../../secret.txt",
    "/files/trials/0/..%2f..%2f..%2fsecret.txt",
    "/files/..%5csecret.txt",
    "/files/trials%5c..%5c..%5csecret.txt",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/files/%252fetc%252fpasswd",
    "/files/{abs}",  # the secret's absolute path: /files//tmp/...
    "/files/%2f{rel}",
    "/files/trials/0/leak.txt",  # a symlink to the secret
    "/files/trials/0/outside/secret.txt",  # a symlinked folder leading out
    "/files/trials/0/history.jsonl%00.txt",
    "/files/C:%5cWindows%5cwin.ini",
    "/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{rel}",
    "/../secret.txt",
]


def popen(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """`tunelab ARGS` with stdout and stderr in files (read while it runs, see `output`)."""
    log = cwd / f"{args[0]}-{time.monotonic_ns()}"
    with open(f"{log}.out", "w") as out, open(f"{log}.err", "w") as err:
        proc = subprocess.Popen(
            [EXE, *args],
            cwd=cwd,
            stdout=out,
            stderr=err,
            env=dict(env or os.environ, PYTHONUNBUFFERED="1", COLUMNS="120"),
        )
    proc.log = log
    return proc


def output(proc: subprocess.Popen) -> tuple[str, str]:
    return Path(f"{proc.log}.out").read_text(), Path(f"{proc.log}.err").read_text()


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    proc.wait(timeout=timeout)
    return proc.returncode, *output(proc)


def stop(*procs: subprocess.Popen) -> None:
    """SIGTERM to all at once (each takes a second or two to unload torch), then wait."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_url(proc: subprocess.Popen, timeout: float = 120) -> str:
    """The base URL the dashboard prints, once it answers."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            out, err = output(proc)
            pytest.fail(f"the dashboard ended (rc {proc.returncode}):\n{out}\n{err}")
        found = re.search(r"(http://\S+?)/dashboard", output(proc)[0])
        if found:
            base = found.group(1).replace("0.0.0.0", "127.0.0.1")
            try:
                urllib.request.urlopen(f"{base}/api/meta", timeout=5).close()
                return found.group(1)
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the dashboard did not answer in time")


def raw_get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    """GET exactly ``path`` (no client-side normalising) from 127.0.0.1."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def listening(port: int) -> dict[str, set[str]]:
    """Local addresses listening on ``port``, from /proc/net/tcp and tcp6 (hex, as the kernel)."""
    found: dict[str, set[str]] = {"tcp": set(), "tcp6": set()}
    for table in found:
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            address, hexport = fields[1].rsplit(":", 1)
            if int(hexport, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found[table].add(address)
    return found


def other_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (SIOCGIFADDR on each interface)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on it
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                found.append(address)
    return found


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A real small study (tunelab.tune), a secret next to it and links that lead to it."""
    root = tmp_path_factory.mktemp("dashboard")
    tunelab.tune_study(SPEC, out=root / "s", quiet=True)
    folder = root / "s"
    (root / "secret.txt").write_text(SECRET)
    (folder / "trials" / "0" / "leak.txt").symlink_to(root / "secret.txt")
    (folder / "trials" / "0" / "outside").symlink_to(root, target_is_directory=True)
    (folder / "trials" / "0" / "inside.jsonl").symlink_to(folder / "trials" / "1" / "history.jsonl")
    return folder


@pytest.fixture(scope="module")
def servers(study):
    """Two dashboards on the study, started side by side: the default and --host 0.0.0.0."""
    port = free_port()
    local = popen("dashboard", str(study), "--port", str(port), cwd=study.parent)
    exposed = popen("dashboard", str(study), "--host", "0.0.0.0", "--port", "0", cwd=study.parent)
    yield {"local": local, "port": port, "exposed": exposed}
    stop(local, exposed)


@pytest.fixture(scope="module")
def local(servers):
    base = wait_for_url(servers["local"])
    assert base == f"http://127.0.0.1:{servers['port']}"
    return servers["port"]


def test_serves_the_dashboard_and_its_api_on_127_0_0_1(local):
    with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as response:
        assert response.status == 200
        assert response.url.endswith("/dashboard")  # optuna-dashboard's redirect, followed
        assert "Optuna Dashboard" in response.read().decode()
    with urllib.request.urlopen(f"http://127.0.0.1:{local}/api/studies", timeout=10) as response:
        studies = json.load(response)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["dash"]


def test_serves_a_trial_file_read_only(local, study):
    url = f"http://127.0.0.1:{local}/files/trials/1/history.jsonl"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        body = response.read()
    assert body == (study / "trials" / "1" / "history.jsonl").read_bytes()
    assert len(body.splitlines()) == SPEC["train"]["epochs"]
    # a symlink that stays inside the study folder is fine
    assert raw_get(local, "/files/trials/0/inside.jsonl") == (200, body)
    request = urllib.request.Request(url, data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert (study / "trials" / "1" / "history.jsonl").read_bytes() == body
    assert raw_get(local, "/files/trials/9/nothing.txt")[0] == 404


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_leaves_the_study_folder(local, study, path):
    secret = study.parent / "secret.txt"
    status, body = raw_get(local, path.format(abs=secret, rel=str(secret).lstrip("/")))
    assert status in (400, 403, 404), (status, body[:200])
    assert SECRET.encode() not in body and b"root:" not in body
    assert body.startswith(str(status).encode())  # our short plain-text refusal, not a page


def test_answers_only_to_local_host_names(local):
    assert raw_get(local, "/api/studies", host="evil.example")[0] == 403  # DNS rebinding
    assert raw_get(local, "/files/study.json", host=f"attacker.test:{local}")[0] == 403
    for name in (f"127.0.0.1:{local}", f"localhost:{local}", "localhost"):
        assert raw_get(local, "/api/studies", host=name)[0] == 200


def test_binds_127_0_0_1_only(local):
    assert listening(local) == {"tcp": {"0100007F"}, "tcp6": set()}  # 127.0.0.1, no IPv6
    for address in other_ipv4_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, local), timeout=5).close()


def test_another_host_warns_and_sigterm_stops_it(servers):
    proc = servers["exposed"]
    base = wait_for_url(proc)
    port = int(base.rsplit(":", 1)[1])
    assert base == f"http://0.0.0.0:{port}" and port > 0  # --port 0: a free port, printed
    assert listening(port)["tcp"] == {"00000000"}
    out, err = output(proc)
    assert "warning: --host 0.0.0.0 makes the dashboard reachable from the network" in err
    assert "ssh -L" in err
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc, timeout=30)
    assert code == 0, err
    assert out.rstrip().endswith("dashboard stopped")
    assert "Traceback" not in err
    assert listening(port) == {"tcp": set(), "tcp6": set()}


def test_a_folder_that_is_no_study_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        main(["dashboard", str(run), "--port", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{run} is not a study folder: it has no study.json" in err
    assert "looks like a run folder" in err and "tunelab tune" in err
    with pytest.raises(SystemExit):
        main(["dashboard", str(tmp_path / "nothing")])
    assert f"no study folder at {tmp_path / 'nothing'}" in capsys.readouterr().err


def test_missing_extra_gives_the_install_hint(study, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails as if absent
    with pytest.raises(SystemExit) as exit_:
        main(["dashboard", str(study), "--port", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert 'pip install "tunelab[dashboard]"' in err
    assert "Traceback" not in err
