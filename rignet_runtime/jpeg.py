"""A strict check of a JPEG's entropy-coded data: the faults libjpeg only warns about.

libjpeg (behind TensorFlow's and Pillow's decoders) decodes a JPEG whose scan data is corrupt with
a warning on stderr ("Corrupt JPEG data: premature end of data segment", "... extraneous bytes
before marker", "... bad Huffman code") and returns garbage pixels. `jpeg_fault` finds those
faults without decoding pixels: it walks every scan's Huffman codes, block by block, and checks
that the data holds exactly the blocks the frame needs, restart markers in sequence, and nothing
after the last block but padding.

Baseline and extended sequential Huffman JPEGs (SOF0, SOF1) are checked scan by scan, and so are
progressive ones (SOF2): DC scans, first AC scans with their end-of-band runs, and AC refinement
scans, which need the history of which coefficients earlier scans made nonzero. Other coding
processes (lossless, hierarchical, arithmetic) are refused: no decoder the project uses reads them.

NumPy only, so that it runs in the device runtime too.
"""

import numpy as np

_SOF_SEQUENTIAL = (0xC0, 0xC1)
_SOF_PROGRESSIVE = 0xC2
_SOF_OTHER = (0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
_PAD_BITS = 64 * 32  # a block may run this far past the data before the check sees it


class _Corrupt(Exception):
    """A fault in the file; its message is the reason."""


def jpeg_fault(data):
    """Why `data` (the bytes of a JPEG file) is corrupt, or None when its scans are whole.

    Returns:
        A short reason ("premature end of data in scan 1 at block 612 of 1200", ...), or None.
        Bytes that are not a JPEG (no SOI marker) give None: other formats are not checked here.
    """
    data = bytes(data)
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        _check(data)
    except _Corrupt as fault:
        return str(fault)
    return None


def _check(data):
    frame = None
    dc_tables, ac_tables = {}, {}
    restart_interval = 0
    scan = 0
    coefficients = None  # progressive: per component, the nonzero history of each block
    pos = 2
    while True:
        pos, marker = _next_marker(data, pos)
        if marker == 0xD9:  # EOI
            break
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            continue  # TEM and stray restart markers have no length
        if pos + 2 > len(data):
            raise _Corrupt(f"segment 0x{marker:02X} is cut short")
        length = int.from_bytes(data[pos : pos + 2], "big")
        body = data[pos + 2 : pos + length]
        if length < 2 or len(body) != length - 2:
            raise _Corrupt(f"segment 0x{marker:02X} is cut short")
        pos += length
        if marker == 0xC4:
            _read_huffman_tables(body, dc_tables, ac_tables)
        elif marker == 0xDD:
            restart_interval = int.from_bytes(body[:2], "big")
        elif marker in _SOF_SEQUENTIAL or marker == _SOF_PROGRESSIVE:
            frame = _read_frame(body, marker == _SOF_PROGRESSIVE)
            if frame["progressive"]:
                coefficients = [np.zeros((c["blocks"], 64), bool) for c in frame["components"]]
        elif marker in _SOF_OTHER:
            raise _Corrupt(f"coding process SOF{marker - 0xC0} is not supported")
        elif marker == 0xDA:
            if frame is None:
                raise _Corrupt("a scan comes before the frame header")
            scan += 1
            header = _read_scan_header(body, frame)
            end = _entropy_end(data, pos)
            _check_scan(
                data[pos:end], frame, header, dc_tables, ac_tables, restart_interval, coefficients
            )
            pos = end
    if frame is None or scan == 0:
        raise _Corrupt("no frame or no scan before the end of image")


def _next_marker(data, pos):
    """(position after the marker, marker byte) of the marker at `pos` (fill bytes skipped)."""
    if pos >= len(data):
        raise _Corrupt("the file ends before its end-of-image marker")
    if data[pos] != 0xFF:
        raise _Corrupt(f"extraneous bytes before a marker at byte {pos}")
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        raise _Corrupt("the file ends before its end-of-image marker")
    return pos + 1, data[pos]


def _entropy_end(data, pos):
    """Where the entropy-coded data starting at `pos` ends: the first marker other than a
    stuffed zero or a restart marker."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise _Corrupt("the file ends inside scan data")
        run_end = pos
        while run_end < len(data) and data[run_end] == 0xFF:
            run_end += 1  # fill bytes may precede a marker
        if run_end >= len(data):
            raise _Corrupt("the file ends inside scan data")
        if data[run_end] == 0x00 or 0xD0 <= data[run_end] <= 0xD7:
            pos = run_end + 1
            continue
        return pos


def _read_huffman_tables(body, dc_tables, ac_tables):
    pos = 0
    while pos < len(body):
        if pos + 17 > len(body):
            raise _Corrupt("a Huffman table is cut short")
        table_class, table_id = body[pos] >> 4, body[pos] & 15
        counts = list(body[pos + 1 : pos + 17])
        symbols = body[pos + 17 : pos + 17 + sum(counts)]
        if len(symbols) != sum(counts) or table_class > 1:
            raise _Corrupt("a Huffman table is cut short or malformed")
        (ac_tables if table_class else dc_tables)[table_id] = _lookup_table(counts, symbols)
        pos += 17 + sum(counts)


def _lookup_table(counts, symbols):
    """A 65536-entry list: for each 16-bit window, (code length << 8 | symbol), 0 = no code."""
    table = np.zeros(1 << 16, np.int32)
    code, k = 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            if code >= 1 << length:
                raise _Corrupt("a Huffman table has more codes than its lengths allow")
            lo = code << (16 - length)
            table[lo : lo + (1 << (16 - length))] = (length << 8) | symbols[k]
            code += 1
            k += 1
        code <<= 1
    return table.tolist()


def _read_frame(body, progressive):
    if len(body) < 6:
        raise _Corrupt("the frame header is cut short")
    height = int.from_bytes(body[1:3], "big")
    width = int.from_bytes(body[3:5], "big")
    count = body[5]
    if len(body) < 6 + 3 * count or count == 0 or width == 0:
        raise _Corrupt("the frame header is cut short or malformed")
    if height == 0:
        raise _Corrupt("the frame's height is 0 (set by a DNL marker, not supported)")
    sampling = [(body[6 + 3 * i + 1] >> 4, body[6 + 3 * i + 1] & 15) for i in range(count)]
    if any(h not in (1, 2, 3, 4) or v not in (1, 2, 3, 4) for h, v in sampling):
        raise _Corrupt("the frame header has an invalid sampling factor")
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    mcus_x = _ceil_div(width, 8 * h_max)
    mcus_y = _ceil_div(height, 8 * v_max)
    components = []
    for i, (h, v) in enumerate(sampling):
        # Blocks of the component alone (a non-interleaved scan) and in the MCU grid (padded).
        alone_x = _ceil_div(_ceil_div(width * h, h_max), 8)
        alone_y = _ceil_div(_ceil_div(height * v, v_max), 8)
        components.append(
            {
                "id": body[6 + 3 * i],
                "h": h,
                "v": v,
                "alone": (alone_y, alone_x),
                "grid_x": mcus_x * h,
                "blocks": mcus_y * v * mcus_x * h,
            }
        )
    return {"progressive": progressive, "mcus": (mcus_y, mcus_x), "components": components}


def _ceil_div(a, b):
    return -(-a // b)


def _read_scan_header(body, frame):
    count = body[0] if body else 0
    if count == 0 or len(body) < 1 + 2 * count + 3:
        raise _Corrupt("a scan header is cut short")
    by_id = {c["id"]: i for i, c in enumerate(frame["components"])}
    members = []
    for i in range(count):
        component_id, tables = body[1 + 2 * i], body[2 + 2 * i]
        if component_id not in by_id:
            raise _Corrupt(f"a scan names component {component_id}, which the frame lacks")
        members.append((by_id[component_id], tables >> 4, tables & 15))
    ss, se, approximation = body[1 + 2 * count : 4 + 2 * count]
    return {
        "members": members,
        "ss": ss,
        "se": se,
        "ah": approximation >> 4,
        "al": approximation & 15,
    }


def _block_order(frame, members):
    """[(component index, block index within the component's grid), ...] of each MCU, and the
    number of MCUs."""
    components = frame["components"]
    if len(members) == 1:
        index = members[0][0]
        rows, cols = components[index]["alone"]
        grid_x = components[index]["grid_x"]
        blocks = [[(index, r * grid_x + c)] for r in range(rows) for c in range(cols)]
        return blocks
    mcus_y, mcus_x = frame["mcus"]
    order = []
    for my in range(mcus_y):
        for mx in range(mcus_x):
            mcu = []
            for index, _, _ in members:
                c = components[index]
                for by in range(c["v"]):
                    for bx in range(c["h"]):
                        mcu.append((index, (my * c["v"] + by) * c["grid_x"] + mx * c["h"] + bx))
            order.append(mcu)
    return order


def _intervals(segment, restart_interval, num_mcus):
    """The entropy data split at its restart markers, each unstuffed; checks the markers' count
    and sequence."""
    parts, start, pos = [], 0, 0
    while True:
        pos = segment.find(b"\xff", pos)
        if pos < 0:
            break
        following = segment[pos + 1] if pos + 1 < len(segment) else None
        if following is not None and 0xD0 <= following <= 0xD7:
            if (following - 0xD0) != len(parts) % 8:
                raise _Corrupt(f"restart marker RST{following - 0xD0} is out of sequence")
            parts.append(segment[start:pos])
            start = pos = pos + 2
        else:
            pos += 1
    parts.append(segment[start:])
    expected = _ceil_div(num_mcus, restart_interval) if restart_interval else 1
    if len(parts) != expected:
        raise _Corrupt(f"the scan has {len(parts)} restart intervals where {expected} belong")
    return [part.rstrip(b"\xff").replace(b"\xff\x00", b"\xff") for part in parts]


def _windows(part):
    """(the 16-bit window starting at each bit, as a list; the number of data bits)."""
    padded = np.concatenate(
        [np.frombuffer(part, np.uint8), np.zeros(_PAD_BITS // 8 + 3, np.uint8)]
    ).astype(np.int64)
    num_bits = 8 * len(part)
    triples = (padded[:-2] << 16) | (padded[1:-1] << 8) | padded[2:]
    at = np.arange(num_bits + _PAD_BITS)
    windows = (triples[at >> 3] >> (8 - (at & 7))) & 0xFFFF
    return windows.tolist(), num_bits


def _check_scan(segment, frame, header, dc_tables, ac_tables, restart_interval, coefficients):
    members = header["members"]
    order = _block_order(frame, members)
    parts = _intervals(segment, restart_interval, len(order))
    per_part = restart_interval or len(order)
    progressive = frame["progressive"]
    kind = "sequential" if not progressive else _progressive_kind(header)
    tables = {}
    for index, dc_id, ac_id in members:
        needs_dc = kind in ("sequential", "dc_first")
        needs_ac = kind in ("sequential", "ac_first", "ac_refine")
        if needs_dc and dc_id not in dc_tables or needs_ac and ac_id not in ac_tables:
            raise _Corrupt("a scan uses a Huffman table that was never defined")
        tables[index] = (dc_tables.get(dc_id), ac_tables.get(ac_id))
    for number, part in enumerate(parts):
        windows, num_bits = _windows(part)
        mcus = order[number * per_part : (number + 1) * per_part]
        walk = _WALKS[kind]
        pos = walk(windows, num_bits, mcus, tables, header, coefficients)
        if pos > num_bits:
            raise _Corrupt(f"premature end of data after {len(order)} blocks were expected")
        extra = len(part) - _ceil_div(pos, 8)  # the last byte's padding bits are allowed
        if extra:
            raise _Corrupt(f"{extra} extraneous bytes after the last block")


def _progressive_kind(header):
    if header["ss"] == 0:
        if header["se"] != 0:
            raise _Corrupt("a progressive DC scan has a spectral end other than 0")
        return "dc_first" if header["ah"] == 0 else "dc_refine"
    if len(header["members"]) != 1 or header["se"] < header["ss"] or header["se"] > 63:
        raise _Corrupt("a progressive AC scan has an invalid header")
    return "ac_first" if header["ah"] == 0 else "ac_refine"


def _bad_code():
    return _Corrupt("bad Huffman code")


def _walk_sequential(windows, num_bits, mcus, tables, header, coefficients):
    pos = 0
    for mcu in mcus:
        for index, _ in mcu:
            dc, ac = tables[index]
            value = dc[windows[pos]]
            if not value:
                raise _bad_code()
            pos += (value >> 8) + (value & 15)
            k = 1
            while k < 64:
                value = ac[windows[pos]]
                if not value:
                    raise _bad_code()
                size = value & 15
                pos += (value >> 8) + size
                if size:
                    k += ((value >> 4) & 15) + 1
                elif value & 255 == 0xF0:
                    k += 16
                else:
                    break
            if k > 64:
                raise _Corrupt("a block holds more than 64 coefficients")
            if pos > num_bits:
                return pos
    return pos


def _walk_dc_first(windows, num_bits, mcus, tables, header, coefficients):
    pos = 0
    for mcu in mcus:
        for index, block in mcu:
            value = tables[index][0][windows[pos]]
            if not value:
                raise _bad_code()
            pos += (value >> 8) + (value & 15)
            coefficients[index][block, 0] = True
            if pos > num_bits:
                return pos
    return pos


def _walk_dc_refine(windows, num_bits, mcus, tables, header, coefficients):
    return sum(len(mcu) for mcu in mcus)  # one bit per block


def _walk_ac_first(windows, num_bits, mcus, tables, header, coefficients):
    ss, se = header["ss"], header["se"]
    pos, eob_run = 0, 0
    for mcu in mcus:
        ((index, block),) = mcu
        if eob_run:
            eob_run -= 1
            continue
        ac = tables[index][1]
        history = coefficients[index][block]
        k = ss
        while k <= se:
            value = ac[windows[pos]]
            if not value:
                raise _bad_code()
            pos += value >> 8
            run, size = (value >> 4) & 15, value & 15
            if size:
                k += run
                if k > se:
                    raise _Corrupt("a coefficient run passes the band's end")
                pos += size
                history[k] = True
                k += 1
            elif run == 15:
                k += 16
            else:
                eob_run = (1 << run) - 1
                if run:
                    eob_run += windows[pos] >> (16 - run)
                    pos += run
                break
        if pos > num_bits:
            return pos
    return pos


def _walk_ac_refine(windows, num_bits, mcus, tables, header, coefficients):
    ss, se = header["ss"], header["se"]
    pos, eob_run = 0, 0
    for mcu in mcus:
        ((index, block),) = mcu
        history = coefficients[index][block]
        ac = tables[index][1]
        k = ss
        if not eob_run:
            while k <= se:
                value = ac[windows[pos]]
                if not value:
                    raise _bad_code()
                pos += value >> 8
                run, size = (value >> 4) & 15, value & 15
                new = False
                if size:
                    if size != 1:
                        raise _Corrupt("a refinement scan codes a coefficient of size > 1")
                    pos += 1  # the new coefficient's sign
                    new = True
                elif run != 15:
                    eob_run = 1 << run
                    if run:
                        eob_run += windows[pos] >> (16 - run)
                        pos += run
                    break
                while k <= se:  # skip `run` zero-history coefficients, correcting the others
                    if history[k]:
                        pos += 1
                    else:
                        if run == 0:
                            break
                        run -= 1
                    k += 1
                if new:
                    if k > se:
                        raise _Corrupt("a coefficient run passes the band's end")
                    history[k] = True
                k += 1
        if eob_run:
            pos += int(np.count_nonzero(history[k : se + 1]))  # correction bits
            eob_run -= 1
        if pos > num_bits:
            return pos
    return pos


_WALKS = {
    "sequential": _walk_sequential,
    "dc_first": _walk_dc_first,
    "dc_refine": _walk_dc_refine,
    "ac_first": _walk_ac_first,
    "ac_refine": _walk_ac_refine,
}
