"""Download and extract the public datasets (standard library `urllib` only).

A download goes to `<archive>.part`, resumes with an HTTP Range request after an interruption (in
the same call, up to `retries` times, or in a later call), is checked (size, and MD5 where it is
known) and only then renamed to its final name: a file with the final name is always complete.
Extraction goes to a temporary folder inside the data folder and is moved into place in one
rename, so a dataset folder that exists is complete too.

Offline, a download fails within seconds (a name that does not resolve within `DNS_TIMEOUT`, or no
connection within `CONNECT_TIMEOUT`) with an `OfflineError` that names the URL and where to put
the file by hand.
"""

import dataclasses
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from tqdm import tqdm

from rignet_keras.data.errors import DatasetError
from rignet_runtime.file_modes import apply_umask

logger = logging.getLogger("rignet_keras.data")

USER_AGENT = "rignet-keras (+https://github.com/; dataset downloader)"
DNS_TIMEOUT = 5.0  # seconds for the server's name to resolve
CONNECT_TIMEOUT = 10.0  # seconds for a connection to be made (reads wait `timeout`)


class DownloadError(DatasetError):
    """A download failed, was incomplete, or did not match its checksum; the message says what
    is left on disk."""


class OfflineError(DownloadError):
    """The server could not be reached (its name did not resolve, or no connection was made);
    the message names the URL and where to put the file by hand."""


class _ConnectFailed(OSError):
    """No connection was made to the server (raised inside urllib, which wraps it)."""


def _connection_class(base, connect_timeout):
    """`base` (`http.client.HTTPConnection` or `HTTPSConnection`) with its own connect timeout:
    the connection must be made within `connect_timeout` s; reads then wait the request's."""

    class Connection(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = self._connect_socket

        def _connect_socket(self, address, timeout=None, source_address=None):
            limit = connect_timeout
            if isinstance(timeout, int | float):
                limit = min(timeout, connect_timeout)
            try:
                sock = socket.create_connection(address, limit, source_address)
            except OSError as e:
                raise _ConnectFailed(f"no connection to {address[0]}:{address[1]}: {e}") from e
            sock.settimeout(timeout if isinstance(timeout, int | float) else None)
            return sock

    return Connection


class _ConnectTimeout:
    """Mixin of the urllib handlers below: their connections use `_connection_class`."""

    def __init__(self, connect_timeout):
        super().__init__()
        self.connect_timeout = connect_timeout

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_connection_class(http_class, self.connect_timeout), req, **kwargs)


class _HTTPHandler(_ConnectTimeout, urllib.request.HTTPHandler):
    pass


class _HTTPSHandler(_ConnectTimeout, urllib.request.HTTPSHandler):
    pass


def _opener(connect_timeout):
    return urllib.request.build_opener(
        _HTTPHandler(connect_timeout), _HTTPSHandler(connect_timeout)
    )


def _host_to_resolve(url):
    """(host, port) that a request for `url` connects to first: its proxy's, if one applies."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def check_resolves(url, timeout=DNS_TIMEOUT, connect_timeout=None):
    """Raises `OfflineError` (the message starts with the reason) unless the name of `url`'s
    server (or its proxy's) resolves within `timeout` seconds and, given `connect_timeout`, the
    server accepts a connection within that many (the check before the TFDS builders' downloads)."""
    host, port = _host_to_resolve(url)
    outcome = {}

    def resolve():
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            outcome["error"] = e

    thread = threading.Thread(target=resolve, name="resolve-" + str(host), daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise OfflineError(f"the name {host} did not resolve within {timeout:g} s")
    if "error" in outcome:
        raise OfflineError(f"the name {host} does not resolve ({outcome['error']})")
    if connect_timeout is not None:
        try:
            socket.create_connection((host, port), connect_timeout).close()
        except OSError as e:
            raise OfflineError(f"no connection to {host}:{port} ({e})") from None


def _offline(url, path, reason):
    part = path + ".part"
    kept = f"; {part} is kept, to resume" if os.path.isfile(part) else ""
    return OfflineError(
        f"cannot download {url}: {reason}{kept}. Without network access, download that file "
        f"elsewhere and put it at {path}, then run the command again (it checks the file and goes "
        "on)"
    )


@dataclasses.dataclass(frozen=True)
class Archive:
    """One downloadable archive.

    Args:
        name: short name, e.g. "voc".
        url: where to get it.
        filename: the archive's file name in `<data_dir>/downloads`.
        md5: its MD5 hex digest, or None where no published checksum is known (then only the size
            is verified, against the server's Content-Length).
        target: the folder, relative to the data folder, that extraction must produce.
        member: the folder inside the archive that becomes `target`; None = the whole archive.
    """

    name: str
    url: str
    filename: str
    md5: str | None
    target: str
    member: str | None = None


ARCHIVES = {
    "voc": Archive(
        "voc",
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        "VOCtrainval_11-May-2012.tar",
        "6cd6e144f989b92b3379bac3b3de84fd",
        target="VOCdevkit/VOC2012",
        member="VOCdevkit/VOC2012",
    ),
    "sbd": Archive(
        "sbd",
        "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/"
        "benchmark.tgz",
        "benchmark.tgz",
        "82b4d87ceb2ed10f6038a1cba92111cb",
        target="benchmark_RELEASE",
        member="benchmark_RELEASE",
    ),
    # No published MD5 is known to us for this zip: size-only verification (the server's
    # Content-Length); the MD5 that was computed is logged, so that it can be recorded here.
    "cocostuff10k": Archive(
        "cocostuff10k",
        "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/"
        "cocostuff-10k-v1.1.zip",
        "cocostuff-10k-v1.1.zip",
        None,
        target="cocostuff-10k",
    ),
}

# What each dataset name downloads.
DATASET_ARCHIVES = {
    "voc": ("voc",),
    "sbd": ("sbd",),
    "voc_aug": ("voc", "sbd"),
    "cocostuff10k": ("cocostuff10k",),
}


def md5sum(path, chunk_size=1 << 20):
    """MD5 hex digest of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _content_range_total(header):
    """The total size in a `Content-Range: bytes a-b/total` (or `bytes */total`) header."""
    m = re.match(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)", header or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) != "*" else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, total


def _fetch_once(opener, url, part, offset, timeout, chunk_size, progress):
    """One HTTP request, appending to `part` from `offset`; returns the total size or None."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with opener.open(request, timeout=timeout) as resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        if status == 206:
            start, total = _content_range_total(resp.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(
                    f"{url}: asked for bytes from {offset}, the server sent them from {start}"
                )
            mode = "ab"
        else:  # 200: the whole file (a server that ignores Range also lands here)
            if offset:
                logger.info("%s: the server does not resume; starting over", url)
            offset = 0
            total = int(length) if length is not None else None
            mode = "wb"
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=os.path.basename(part)[: -len(".part")],
                disable=not progress,
            ) as bar,
        ):
            while True:
                chunk = resp.read(chunk_size)
                if not chunk:
                    break
                f.write(chunk)
                bar.update(len(chunk))
    return total


def download_file(
    url,
    path,
    *,
    md5=None,
    retries=5,
    timeout=60,
    connect_timeout=CONNECT_TIMEOUT,
    dns_timeout=DNS_TIMEOUT,
    chunk_size=1 << 20,
    backoff=2.0,
    progress=True,
):
    """Downloads `url` to `path`, resumably and atomically.

    Bytes go to `path + ".part"`; an interrupted transfer is resumed with a Range request (up to
    `retries` times in this call; a later call resumes too). The finished `.part` is checked — its
    size against the server's total, and its MD5 against `md5` if given — and then renamed to
    `path`. A checksum mismatch deletes the `.part` (it cannot be resumed into a good file).

    Offline, it fails within seconds: the server's name must resolve within `dns_timeout` and the
    first connection be made within `connect_timeout`, or an `OfflineError` names the URL and
    where to put the file by hand (no retries; later connections that fail are retried). A file
    already at `path` (put there by hand, or by an earlier call) is checked against `md5`.

    Args:
        url: http(s) URL.
        path: the final file.
        md5: expected MD5 hex digest, or None for size-only verification.
        retries: resumptions after an interrupted transfer or a network error.
        timeout: seconds a read may wait.
        connect_timeout: seconds a connection may take to be made.
        dns_timeout: seconds the server's name may take to resolve.
        backoff: seconds before the first retry (doubling, at most 30).
        progress: show a tqdm progress bar.

    Returns:
        `path`.

    Raises:
        OfflineError: if the server cannot be reached (see above).
        DownloadError: on an HTTP error, an incomplete download after `retries`, or a checksum
            mismatch; the message says what was kept on disk.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if md5 is not None and md5sum(path) != md5.lower():
            raise DownloadError(
                f"{path} does not match the MD5 of {url} ({md5}); it is not that file: delete it "
                "to download it again"
            )
        return path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    part = path + ".part"
    try:
        check_resolves(url, dns_timeout)
    except OfflineError as e:
        raise _offline(url, path, str(e)) from e
    opener = _opener(connect_timeout)
    total = None
    last_error = None
    for attempt in range(retries + 1):
        offset = os.path.getsize(part) if os.path.isfile(part) else 0
        try:
            total = _fetch_once(opener, url, part, offset, timeout, chunk_size, progress)
            last_error = None
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:  # nothing left to send: the .part may be complete
                _, total = _content_range_total(e.headers.get("Content-Range"))
                if total == offset:
                    break
                logger.warning("%s: cannot resume %s (HTTP 416); starting over", url, part)
                os.remove(part)
                continue
            if 400 <= e.code < 500:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
            last_error = e
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", e)
            if attempt == 0 and isinstance(reason, _ConnectFailed):
                raise _offline(url, path, str(reason)) from e
            last_error = e
        size = os.path.getsize(part) if os.path.isfile(part) else 0
        if last_error is None and (total is None or size == total):
            break
        if total is not None and size > total:
            os.remove(part)
            raise DownloadError(f"{url}: received {size} bytes, more than the {total} announced")
        reason = last_error or f"connection closed after {size} of {total} bytes"
        if attempt < retries:
            logger.warning("%s: %s; resuming (retry %d of %d)", url, reason, attempt + 1, retries)
            time.sleep(min(backoff * 2**attempt, 30.0))
    else:
        size = os.path.getsize(part) if os.path.isfile(part) else 0
        raise DownloadError(
            f"download of {url} incomplete after {retries} retries ({last_error or 'cut short'}): "
            f"{size} of {total if total is not None else '?'} bytes kept in {part}; run the same "
            "command again to resume"
        )

    size = os.path.getsize(part)
    digest = md5sum(part)
    if md5 is not None and digest != md5.lower():
        os.remove(part)
        raise DownloadError(
            f"checksum mismatch for {url}: MD5 {digest}, expected {md5}; the download "
            f"({size} bytes) was deleted and {path} was not written. Run the command again; if it "
            "fails again, the file on the server has changed or a proxy altered it."
        )
    if md5 is None:
        logger.info(
            "%s: no known MD5; verified the size only (%d bytes); its MD5 is %s", url, size, digest
        )
    os.replace(part, path)
    return path


def _safe_members_zip(zf, dest):
    root = os.path.realpath(dest)
    for name in zf.namelist():
        target = os.path.realpath(os.path.join(dest, name))
        if not (target == root or target.startswith(root + os.sep)):
            raise DownloadError(f"unsafe path {name!r} in zip archive; refusing to extract")


def extract_archive(archive_path, data_dir, target, member=None):
    """Extracts a .tar/.tar.gz/.tgz/.zip so that `<data_dir>/<target>` appears in one rename.

    Args:
        archive_path: the archive.
        data_dir: the data folder.
        target: the folder to produce, relative to `data_dir` (may be nested, e.g.
            "VOCdevkit/VOC2012").
        member: the folder inside the archive that becomes `target`; None = all of it.

    Returns:
        the path of `target`; left as it is if it already exists.
    """
    data_dir = os.fspath(data_dir)
    final = os.path.join(data_dir, target)
    if os.path.isdir(final):
        logger.info("%s exists; not extracting %s again", final, archive_path)
        return final
    os.makedirs(data_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".extract-{os.path.basename(target)}-", dir=data_dir)
    apply_umask(tmp)
    try:
        try:
            if zipfile.is_zipfile(archive_path):
                with zipfile.ZipFile(archive_path) as zf:
                    _safe_members_zip(zf, tmp)
                    zf.extractall(tmp)
            elif tarfile.is_tarfile(archive_path):
                with tarfile.open(archive_path) as tf_:
                    tf_.extractall(tmp, filter="data")  # refuses absolute paths, "..", devices
            else:
                raise DownloadError(f"{archive_path} is neither a tar nor a zip archive")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise DownloadError(f"cannot extract {archive_path}: {e}") from e
        src = os.path.join(tmp, member) if member else tmp
        if not os.path.isdir(src):
            raise DownloadError(f"{archive_path} holds no folder {member!r}; is it the right file?")
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(src, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def download_archive(archive, data_dir, *, keep_archive=False, progress=True, **kwargs):
    """Downloads one `Archive` into `<data_dir>/downloads` and extracts it into `data_dir`.

    Returns:
        the extracted folder. Nothing is downloaded if it already exists.
    """
    data_dir = os.fspath(data_dir)
    final = os.path.join(data_dir, archive.target)
    if os.path.isdir(final):
        logger.info("%s: %s already exists", archive.name, final)
        return final
    path = os.path.join(data_dir, "downloads", archive.filename)
    try:
        download_file(archive.url, path, md5=archive.md5, progress=progress, **kwargs)
    except OfflineError as e:
        raise OfflineError(
            f"{e}; or extract it yourself so that {final} exists (the --data-dir layout: "
            f"<data-dir>/downloads/{archive.filename}, or <data-dir>/{archive.target})"
        ) from e
    out = extract_archive(path, data_dir, archive.target, archive.member)
    if not keep_archive:
        os.remove(path)
    return out


def download_dataset(name, data_dir, *, keep_archive=False, url=None, progress=True, **kwargs):
    """Downloads and extracts a dataset: "voc", "sbd", "voc_aug" (both) or "cocostuff10k".

    Args:
        name: a key of `DATASET_ARCHIVES`.
        data_dir: the data folder (the readers' `data_dir`).
        keep_archive: keep the archive in `<data_dir>/downloads` after extraction.
        url: a mirror URL for a single-archive dataset (its MD5 is still checked).
        **kwargs: passed to `download_file` (`retries`, `timeout`, ...).

    Returns:
        list of the extracted folders.
    """
    if name not in DATASET_ARCHIVES:
        raise ValueError(f"dataset must be one of {tuple(DATASET_ARCHIVES)}; received {name!r}")
    data_dir = os.path.expanduser(os.fspath(data_dir))
    keys = DATASET_ARCHIVES[name]
    if url is not None and len(keys) != 1:
        raise ValueError(f"url applies to a single archive; {name!r} has {len(keys)}")
    out = []
    for key in keys:
        archive = ARCHIVES[key]
        if url is not None:
            archive = dataclasses.replace(archive, url=url)
        out.append(
            download_archive(
                archive, data_dir, keep_archive=keep_archive, progress=progress, **kwargs
            )
        )
    return out
