"""optuna-dashboard on a study's storage, plus the study folder's own files, read-only.

The server binds 127.0.0.1 unless told otherwise. Next to optuna-dashboard's pages it serves
the study folder's files under ``/files/<relative path>`` (so links such as
``trials/3/history.jsonl`` open from the dashboard) and nothing else: a path that is absolute,
climbs with ``..`` (plain or percent-encoded, once or more), holds a backslash or a NUL, or
resolves through a symlink to outside the folder is refused with 403, never served.

While bound to a loopback address, a request whose ``Host`` header names another machine is
refused too: a web page cannot reach the local dashboard by pointing its own domain name at
127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import mimetypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path, PureWindowsPath
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import FileWrapper

from tunelab.errors import RunError, TunelabError
from tunelab.runs import read_json

__all__ = ["dashboard", "dashboard_app", "DashboardMissing"]

FILES_PREFIX = "/files/"
INSTALL_HINT = 'pip install "tunelab[dashboard]"'
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
_TEXT_SUFFIXES = {".jsonl", ".txt", ".log", ".yaml", ".yml", ".csv", ".md"}
_MAX_DECODE = 4  # layers of percent-encoding undone before a path is refused

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class DashboardMissing(TunelabError):
    """optuna-dashboard (the ``dashboard`` extra) is not installed."""


class _Refused(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


def dashboard(
    study_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    storage: str | None = None,
) -> None:
    """Serve optuna-dashboard for a study folder until Ctrl-C or SIGTERM.

    Args:
        study_dir: a folder written by ``tunelab tune`` (it holds ``study.json``).
        host: the address to bind; anything but a loopback address makes the study readable
            (and, through optuna-dashboard, editable) by anyone who can reach this machine.
        port: the port; 0 picks a free one (the URL printed says which).
        storage: the storage URL when ``study.json`` records it without its password.

    Example:
        >>> dashboard("studies/iris_grid", port=8080)  # doctest: +SKIP
        dashboard of study iris_grid: http://127.0.0.1:8080/dashboard
    """
    local = _is_loopback(host)
    app, name = _build(Path(study_dir), storage=storage, local_only=local)
    server = _bind(app, host, port)
    if not local:
        print(
            f"warning: --host {host} makes the dashboard reachable from the network: anyone who "
            f"can reach this machine on port {server.server_port} can read study {name} and its "
            "files and change or delete it, with no password. To look from another machine, "
            f"keep 127.0.0.1 and tunnel: ssh -L {server.server_port}:127.0.0.1:"
            f"{server.server_port} <this host>",
            file=sys.stderr,
            flush=True,
        )
    shown = f"[{host}]" if ":" in host else host
    print(
        f"dashboard of study {name}: http://{shown}:{server.server_port}/dashboard\n"
        f"study files: http://{shown}:{server.server_port}{FILES_PREFIX}\n"
        "Ctrl-C to stop",
        flush=True,
    )
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("dashboard stopped", flush=True)
    finally:
        server.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def dashboard_app(
    study_dir: str | Path, *, storage: str | None = None, local_only: bool = True
) -> WSGIApp:
    """The WSGI app :func:`dashboard` serves, for a WSGI server of your choice.

    ``local_only`` refuses requests whose ``Host`` header is not a loopback name (turn it off
    behind a proxy or when serving to other machines).
    """
    return _build(Path(study_dir), storage=storage, local_only=local_only)[0]


# --- building the app ---------------------------------------------------------------------------


def _build(folder: Path, *, storage: str | None, local_only: bool) -> tuple[WSGIApp, str]:
    try:
        import optuna_dashboard
    except ImportError as exc:
        raise DashboardMissing(
            f"the dashboard needs optuna-dashboard, which is not installed ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    name, url = _study(folder, storage)
    from tunelab.tune import open_storage

    storage_obj, _ = open_storage(folder, url)
    try:
        storage_obj.get_study_id_from_name(name)
    except KeyError:
        raise RunError(
            f"the storage of {folder} holds no study named {name!r}; was the study deleted "
            "(or --storage pointed at another database)?"
        ) from None
    inner = optuna_dashboard.wsgi(storage_obj)
    root = folder.resolve()

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            if local_only and not _local_host_header(environ.get("HTTP_HOST")):
                raise _Refused(
                    "403 Forbidden", "this dashboard answers only to 127.0.0.1, localhost and [::1]"
                )
            path = _decoded_path(environ.get("PATH_INFO", ""))
            if path.startswith(FILES_PREFIX):
                return _serve_file(root, path[len(FILES_PREFIX) :], environ, start_response)
        except _Refused as exc:
            return _plain(start_response, exc.status, str(exc))
        return inner(environ, start_response)

    return app, name


def _study(folder: Path, storage: str | None) -> tuple[str, str | None]:
    """The study's name and storage URL (None: SQLite in the folder), from ``study.json``."""
    expected = "a study folder written by `tunelab tune` (holding study.json), e.g. studies/NAME"
    if not folder.is_dir():
        raise RunError(f"no study folder at {folder}: expected {expected}")
    if not (folder / "study.json").is_file():
        hint = ""
        if (folder / "metrics.json").is_file() or (folder / "history.jsonl").is_file():
            hint = "; it looks like a run folder (`tunelab train`), which has no Optuna study"
        raise RunError(
            f"{folder} is not a study folder: it has no study.json{hint}; expected {expected}"
        )
    info = read_json(folder / "study.json")
    name = info.get("name") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name:
        raise RunError(
            f"{folder / 'study.json'} names no study (no `name`); was it edited by hand?"
        )
    if storage is not None:
        return name, storage
    stored = info.get("storage")
    if stored and "***" in stored:
        raise RunError(
            f"{folder} is stored in {stored}; pass --storage with the full URL, password "
            "included (tunelab never writes passwords to disk)"
        )
    if not stored and not (folder / "study.db").is_file():
        raise RunError(f"{folder} has study.json but no study.db: the study's storage is missing")
    return name, stored or None


def _bind(app: WSGIApp, host: str, port: int) -> WSGIServer:
    server_class = _Server6 if ":" in host else _Server
    try:
        return make_server(host, port, app, server_class=server_class, handler_class=_Handler)
    except OSError as exc:
        raise TunelabError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port "
            "(--port 0 picks a free one) or --host"
        ) from None


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the terminal keeps the URL in sight."""


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _local_host_header(value: str | None) -> bool:
    """True for a missing Host header or one naming a loopback address (any port)."""
    if not value:
        return True
    hostname = value.rsplit(":", 1)[0] if not value.endswith("]") else value
    return _is_loopback(hostname.lower())


# --- paths, and the study folder's files ------------------------------------------------------------


def _decoded_path(raw: str) -> str:
    """PATH_INFO (PEP 3333: latin-1) fully percent-decoded, or refused when it could climb.

    Every layer of encoding is undone (``%2e%2e``, ``%252e%252e``, ...) before judging, so no
    spelling of ``..``, a backslash or a NUL reaches optuna-dashboard or the file server.
    """
    try:
        text = raw.encode("latin-1").decode("utf-8")
        for _ in range(_MAX_DECODE):
            decoded = unquote(text, errors="strict")
            if decoded == text:
                break
            text = decoded
        else:
            raise _Refused("400 Bad Request", "too many layers of percent-encoding")
    except UnicodeError:
        raise _Refused("400 Bad Request", "the path is not valid UTF-8") from None
    if "\\" in text or any(ord(ch) < 32 for ch in text):
        raise _Refused("403 Forbidden", "backslashes and control characters are refused")
    if ".." in text.split("/"):
        raise _Refused("403 Forbidden", "paths with `..` are refused")
    return text


def _serve_file(root: Path, rel: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD"):
        return _plain(
            start_response,
            "405 Method Not Allowed",
            "study files are read-only",
            [("Allow", "GET, HEAD")],
        )
    path = _study_file(root, rel)
    try:
        fh = open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")  # noqa: SIM115 (the server closes it)
    except OSError:
        raise _Refused("404 Not Found", "no such file in the study folder") from None
    start_response(
        "200 OK",
        [
            ("Content-Type", _content_type(path)),
            ("Content-Length", str(os.fstat(fh.fileno()).st_size)),
            ("X-Content-Type-Options", "nosniff"),
            # a served page runs in its own origin: it cannot act as the dashboard
            ("Content-Security-Policy", "sandbox allow-scripts allow-popups"),
            ("Cache-Control", "no-store"),
        ],
    )
    if method == "HEAD":
        fh.close()
        return [b""]
    return environ.get("wsgi.file_wrapper", FileWrapper)(fh, 1 << 16)


def _study_file(root: Path, rel: str) -> Path:
    """The regular file ``rel`` (decoded, relative to the prefix) names inside ``root``."""
    if not rel:
        raise _Refused("404 Not Found", "name a file: /files/<path inside the study folder>")
    if rel.startswith("/") or PureWindowsPath(rel).anchor:
        raise _Refused("403 Forbidden", "absolute paths are refused; give a path inside the study")
    if any(part in ("", ".") for part in rel.split("/")):
        raise _Refused("403 Forbidden", "only plain paths inside the study folder are served")
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise _Refused("403 Forbidden", "the path leads outside the study folder")
    if not path.is_file():
        raise _Refused("404 Not Found", "no such file in the study folder")
    return path


def _content_type(path: Path) -> str:
    if path.suffix in _TEXT_SUFFIXES:
        return "text/plain; charset=utf-8"
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("json") else kind


def _plain(
    start_response: Callable, status: str, text: str, extra: list | None = None
) -> list[bytes]:
    body = f"{status}: {text}\n".encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            *(extra or []),
        ],
    )
    return [body]
