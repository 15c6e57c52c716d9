"""Writers of small datasets in the real layouts, for the data tests (imported by conftest.py)."""

import hashlib
import io
import os
import re
import tarfile
from http.server import BaseHTTPRequestHandler

import numpy as np
import scipy.io

from rignet_keras.data import write_synthetic_voc
from rignet_keras.data.synthetic import SyntheticConfig
from rignet_keras.data.voc_layout import VOCLayoutWriter, write_id_list, write_jpeg


def random_image(rng, h, w):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def random_mask(rng, h, w, num_classes=21, void=True):
    mask = rng.integers(0, num_classes, size=(h, w), dtype=np.uint8)
    if void:
        mask[0, :] = 255
    return mask


# The layout writer's list helper, under the name the tests use.
write_list = write_id_list


class VOCFixture:
    """A tiny VOC 2012 + SBD tree: `masks[id]` is the exact VOC mask, `sbd_masks[id]` SBD's."""

    def __init__(self, root, seed=0):
        rng = np.random.default_rng(seed)
        self.root = str(root)
        self.voc = os.path.join(self.root, "VOCdevkit", "VOC2012")
        self.sbd = os.path.join(self.root, "benchmark_RELEASE", "dataset")
        self.voc_train = ["2007_000001", "2007_000002", "2008_000003"]
        self.voc_val = ["2007_000010", "2008_000011"]
        self.sbd_train = ["2007_000002", "2008_000020", "2008_000021", "2007_000010"]
        self.sbd_val = ["2008_000022", "2008_000003", "2008_000011"]
        self.images, self.masks, self.sbd_masks = {}, {}, {}
        writer = VOCLayoutWriter(self.root)
        writer.make_voc_folders()
        all_ids = sorted(set(self.voc_train + self.voc_val + self.sbd_train + self.sbd_val))
        for k, i in enumerate(all_ids):
            h, w = 20 + 2 * k, 24 + k
            self.images[i] = random_image(rng, h, w)
            if i in self.voc_train + self.voc_val:
                self.masks[i] = random_mask(rng, h, w)
                writer.voc_sample(i, self.images[i], self.masks[i])
            else:
                write_jpeg(os.path.join(self.voc, "JPEGImages", f"{i}.jpg"), self.images[i])
            if i in self.sbd_train + self.sbd_val:
                self.sbd_masks[i] = random_mask(rng, h, w, void=False)
                writer.sbd_sample(i, self.images[i], self.sbd_masks[i])
        trainval = self.voc_train + self.voc_val
        writer.voc_lists({"train": self.voc_train, "val": self.voc_val, "trainval": trainval})
        writer.sbd_lists({"train": self.sbd_train, "val": self.sbd_val})


class COCOStuffFixture:
    """A tiny COCO-Stuff 10k v1.1 tree; `raw[id]` is the exact S array written."""

    def __init__(self, root, seed=0):
        rng = np.random.default_rng(seed)
        self.root = os.path.join(str(root), "cocostuff-10k")
        self.train = ["COCO_train2014_000000000077", "COCO_train2014_000000000078"]
        self.test = ["COCO_train2014_000000000079"]
        self.images, self.raw = {}, {}
        for k, i in enumerate(self.train + self.test):
            h, w = 16 + k, 18 + 2 * k
            self.images[i] = random_image(rng, h, w)
            s = rng.integers(0, 183, size=(h, w)).astype(np.uint16)
            s[0, :6] = [0, 1, 12, 13, 92, 182]  # unlabeled, first thing, unused, next, stuff, last
            self.raw[i] = s
            write_jpeg(os.path.join(self.root, "images", f"{i}.jpg"), self.images[i])
            os.makedirs(os.path.join(self.root, "annotations"), exist_ok=True)
            scipy.io.savemat(
                os.path.join(self.root, "annotations", f"{i}.mat"),
                {"S": s, "names": np.array(["x"], dtype=object)},
            )
        write_list(os.path.join(self.root, "imageLists", "train.txt"), self.train)
        write_list(os.path.join(self.root, "imageLists", "test.txt"), self.test)


class RangeHandler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours `Range: bytes=N-` unless `server.ranges` is False; cuts the
    next `server.cuts` responses after `server.cut_after` bytes (then closes the connection)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server
        srv.requests.append({"path": self.path, "range": self.headers.get("Range")})
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and srv.ranges:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts > 0:
            srv.cuts -= 1
            self.wfile.write(body[: srv.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def corrupt_jpeg_body(path, kind):
    """Corrupts the JPEG at `path` in place, keeping its markers: its size still reads from the
    header and it still ends with the end-of-image marker, but it does not decode.

    kind "huffman": a Huffman table's codes are broken (Pillow and TensorFlow both refuse it);
    "scan": a segment inside the scan data overruns the file (Pillow decodes it, TensorFlow's
    decoder, the one training uses, refuses it); "random": the scan data is replaced by random
    bytes with no marker in them (both decoders return garbage pixels, with only libjpeg's
    "Corrupt JPEG data" warning on stderr).
    """
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if kind == "huffman":
        dht = data.index(b"\xff\xc4")
        data[dht + 5 : dht + 21] = b"\xff" * 16
    elif kind == "scan":
        sos = data.index(b"\xff\xda")
        start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
        mid = (start + len(data) - 2) // 2
        data[mid : mid + 4] = b"\xff\xfe\xff\xf0"
    elif kind == "random":
        sos = data.index(b"\xff\xda")
        start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
        noise = np.random.default_rng(0).integers(0, 255, len(data) - 2 - start, np.uint8)
        data[start:-2] = noise.tobytes()
    else:
        raise ValueError(kind)
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    with open(path, "wb") as f:
        f.write(bytes(data))


def md5(data):
    return hashlib.md5(data).hexdigest()


def voc_tar(tmp_path):
    """A .tar.gz holding VOCdevkit/VOC2012 (a small synthetic set in the VOC layout)."""
    src = tmp_path / "src"
    write_synthetic_voc(src, num_train=3, num_val=2, config=SyntheticConfig(image_size=(48, 48)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "VOCdevkit", arcname="VOCdevkit")
    return buf.getvalue()
