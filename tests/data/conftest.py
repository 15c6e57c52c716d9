"""Fixtures of the data tests (small datasets in the real layouts, written into tmp folders; see
data_fixtures.py), and a guard that refuses any network connection not to the loopback address."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import socket  # noqa: E402
import threading  # noqa: E402
from http.server import ThreadingHTTPServer  # noqa: E402

import pytest  # noqa: E402

from tests.data.data_fixtures import COCOStuffFixture, RangeHandler, VOCFixture  # noqa: E402

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkRefused(ConnectionRefusedError, RuntimeError):
    """A connection the tests refused: an `OSError`, as a refusal from the network would be, so
    that code under test reports it as it would report that one."""


def _check_loopback(address):
    if isinstance(address, tuple) and address:
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise NetworkRefused(f"tests/data must not open network connections; tried {address!r}")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Every test here may only connect to 127.0.0.1 (the downloader's test server)."""

    def connect(self, address):
        _check_loopback(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        _check_loopback(address)
        return _real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def voc_tree(tmp_path):
    return VOCFixture(tmp_path / "data")


@pytest.fixture
def coco_tree(tmp_path):
    return COCOStuffFixture(tmp_path / "data")


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 (a thread), serving `server.files` (see RangeHandler)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.files, srv.requests, srv.ranges, srv.cuts, srv.cut_after = {}, [], True, 0, 0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()
