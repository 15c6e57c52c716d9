"""Where a builder's archives come from: the folders in its `manual_dir` when they are there, else
the public archives of `rignet_keras.data.download.ARCHIVES` (the one table of their URLs),
fetched by TFDS's download manager and checked before they are extracted.

What is verified, per archive (the same in docs/DATA.md):

- VOC 2012 trainval: size and SHA-256, registered in `checksums.tsv` beside this module (TFDS's
  format: url, size, sha256, filename; TFDS reads it as the builder's `url_infos` and refuses a
  download that differs, `NonMatchingChecksumError`);
- SBD `benchmark.tgz`: no SHA-256 is known to us, so nothing is registered; its published MD5
  (`ARCHIVES["sbd"].md5`) is checked after the download, and a mismatch deletes it;
- COCO-Stuff 10k v1.1: no published checksum is known to us: the download is checked only by
  the transfer (the server's Content-Length) and by extraction (the zip's CRCs); its SHA-256 and
  size, which TFDS records beside it (`<file>.INFO`), are logged so that they can be registered.

Offline, nothing waits on TFDS's retries: the server must resolve and accept a connection within
seconds (`download.check_resolves`) unless the archive is already in TFDS's download folder or,
where its file name is registered, in `manual_dir`; else a one-line `DatasetError` names the URL
and how to pass a `manual_dir` instead.
"""

import glob
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile

from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

from rignet_keras.data.download import (
    ARCHIVES,
    CONNECT_TIMEOUT,
    OfflineError,
    check_resolves,
    md5sum,
)
from rignet_keras.data.errors import DatasetError

logger = logging.getLogger("rignet_keras.data")


class ArchiveBuilderMixin:
    """What a builder that downloads declares. `ARCHIVES`: the table its archives' URLs and MD5s
    come from, `rignet_keras.data.download.ARCHIVES` (a test subclass points it at a loopback
    server; a user has no reason to touch it). `DOWNLOAD_NAME`: the dataset name of
    `rignet data download`, for the messages."""

    ARCHIVES = ARCHIVES
    DOWNLOAD_NAME = ""


def manual_dir_or_none(dl_manager):
    """The `manual_dir` as a str, or None where it does not exist or is empty."""
    try:
        return os.fspath(dl_manager.manual_dir)
    except AssertionError:  # TFDS: "Manual directory X does not exist or is empty. ..."
        return None


def _cached(dl_manager, url):
    """True where TFDS's download folder holds a complete download of `url` (a file with its
    `.INFO` record naming the URL, as TFDS writes them)."""
    folder = os.fspath(dl_manager.download_dir)
    for info_path in glob.glob(os.path.join(folder, "*.INFO")) + glob.glob(
        os.path.join(folder, "*", "*.INFO")
    ):
        try:
            with open(info_path, encoding="utf-8") as f:
                urls = json.load(f).get("urls", ())
        except (OSError, ValueError, AttributeError):
            continue
        if url in urls and os.path.isfile(info_path[: -len(".INFO")]):
            return True
    return False


def _local(builder, dl_manager, url):
    """True where `url` needs no network: downloaded already, or (its file name registered) in
    `manual_dir`, where TFDS takes it from."""
    registered = (builder.url_infos or {}).get(url)
    manual = manual_dir_or_none(dl_manager)
    if registered and registered.filename and manual:
        if os.path.isfile(os.path.join(manual, registered.filename)):
            return True
    return _cached(dl_manager, url)


def _full_name(builder):
    """ "rignet_voc_aug", "rignet_cocostuff10k/171": the name `prepare` takes."""
    config = builder.builder_config
    return f"{builder.name}/{config.name}" if config else builder.name


def _one_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _checksums_file(builder):
    return os.fspath(builder._checksums_path)  # noqa: SLF001 (TFDS's own lookup of it)


def _mismatch(builder, url, error):
    """A one-line `DatasetError` for TFDS's `NonMatchingChecksumError`; the download it left in
    its temporary folder is deleted."""
    registered = (builder.url_infos or {}).get(url)
    text = str(error)
    got = re.search(r"Got: UrlInfo\(size=([^,]+), checksum='([0-9a-f]+)'", text)
    got = f"; got SHA-256 {got.group(2)} and {got.group(1)}" if got else ""
    where = re.search(r"downloaded to (.+?), has wrong checksum", text)
    fate = ""
    if where and ".tmp." in os.path.basename(os.path.dirname(where.group(1))):
        shutil.rmtree(os.path.dirname(where.group(1)), ignore_errors=True)
        fate = "; the download was deleted"
    elif where:  # a file TFDS took from manual_dir or from its download folder
        fate = f"; {where.group(1)} is not that file: replace or delete it"
    expected = (
        f"SHA-256 {registered.checksum} and {int(registered.size)} bytes"
        if registered
        else "the registered checksum"
    )
    return DatasetError(
        f"checksum mismatch for {url}: expected {expected}, registered in "
        f"{_checksums_file(builder)}{got}{fate}. If it happens again, the file on the server "
        "has changed or a proxy altered it"
    )


def _check_md5(path, url, md5):
    """Checks a download without a registered SHA-256 against its published MD5; a mismatch
    deletes it (and TFDS's record of it), so that the next preparation downloads it again."""
    digest = md5sum(path)
    if digest != md5.lower():
        for stale in (path, path + ".INFO"):
            if os.path.isfile(stale):
                os.remove(stale)
        raise DatasetError(
            f"checksum mismatch for {url}: MD5 {digest}, expected {md5} "
            "(rignet_keras.data.download ARCHIVES); the download was deleted"
        )


def _log_recorded(path, url):
    """Logs the SHA-256 and size TFDS recorded for a download with no known checksum."""
    try:
        with open(path + ".INFO", encoding="utf-8") as f:
            info = json.load(f).get("url_info") or {}
    except (OSError, ValueError, AttributeError):
        info = {}
    logger.info(
        "%s: no published checksum known; not verified beyond the transfer and extraction "
        "(SHA-256 %s, %s bytes)",
        url,
        info.get("checksum", "?"),
        info.get("size", "?"),
    )


def fetch_archive(builder, dl_manager, key, missing):
    """Downloads (or takes from TFDS's download folder) the archive `key` of `builder.ARCHIVES`,
    checks it and extracts it with TFDS's download manager; returns the extracted folder.

    `missing` (e.g. "VOC 2012 folder not found: DIR/VOCdevkit/VOC2012") opens the one-line
    `DatasetError` raised where the archive cannot be had.
    """
    archive = builder.ARCHIVES[key]
    url = archive.url
    if not _local(builder, dl_manager, url):
        try:
            check_resolves(url, connect_timeout=CONNECT_TIMEOUT)
        except OfflineError as e:
            raise DatasetError(
                f"{missing}, and {url} cannot be downloaded: {e}. Pass a manual_dir holding the "
                f"data instead (`rignet data download {builder.DOWNLOAD_NAME} "
                "--data-dir DIR` writes it where there is network access; then `rignet data "
                f"prepare {_full_name(builder)} --manual-dir DIR`, or "
                "download_config=tfds.download.DownloadConfig(manual_dir=DIR))"
            ) from None
    try:
        path = os.fspath(dl_manager.download(url))
    except NonMatchingChecksumError as e:
        raise _mismatch(builder, url, e) from None
    except Exception as e:  # TFDS's DownloadError, requests' errors, OSError: one line each
        raise DatasetError(f"cannot download {url}: {_one_line(e)}") from None
    if (builder.url_infos or {}).get(url) is None:
        if archive.md5:
            _check_md5(path, url, archive.md5)
        else:
            _log_recorded(path, url)
    try:
        return os.fspath(dl_manager.extract(path))
    except Exception as e:  # TFDS's ExtractError and UnsafeArchiveError, OSError
        raise DatasetError(f"cannot extract {path} (from {url}): {_one_line(e)}") from None


def linked_layout(dl_manager, name, links):
    """A folder of symbolic links `{relative path: target}` in TFDS's download folder,
    which gathers archives extracted apart into the one layout a reader expects (e.g. VOC's and
    SBD's under one `data_dir`). Made under a temporary name and renamed, so it is whole."""
    key = hashlib.sha256(json.dumps(sorted(links.items())).encode()).hexdigest()[:16]
    base = os.path.join(os.fspath(dl_manager.download_dir), name)
    final = os.path.join(base, f"layout.{key}")
    if os.path.isdir(final):
        return final
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".layout-", dir=base)
    for rel, target in links.items():
        link = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.abspath(target), link, target_is_directory=os.path.isdir(target))
    try:
        os.replace(tmp, final)
    except OSError:  # made meanwhile by another preparation: the same links
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(final):
            raise
    return final


def missing_message(dl_manager, what, *parts):
    """The opening of the refusal where data is neither in `manual_dir` nor downloadable:
    "<what> not found: <manual_dir>/<parts>" (TFDS's default `manual_dir` where none was given)."""
    named = os.fspath(getattr(dl_manager, "_manual_dir", None) or "manual_dir")
    where = "" if manual_dir_or_none(dl_manager) else " (manual_dir does not exist or is empty)"
    return f"{what} not found: {os.path.join(named, *parts)}{where}"
