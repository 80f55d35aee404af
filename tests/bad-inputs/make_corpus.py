#!/usr/bin/env python3
"""Writes the binary files of the bad-input corpus (tests/bad-inputs/files/).

Standard library only; deterministic (gzip mtime 0, fixed bytes), so running it again gives
the same files. Every file is small: a case that needs a huge declared size gets it from a
header, never from data. `cases.toml` says what each file is for.
"""

import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")


def write(name, data):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def idx(dims, data, type_code=0x08):
    header = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + data


def npy(header_dict, data, version=(1, 0)):
    text = header_dict
    while (10 + len(text) + 1) % 64:
        text += " "
    text += "\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(text)) + text.encode() + data


def npy_f4(shape, values):
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    return npy(h, b"".join(struct.pack("<f", v) for v in values))


def png(width, height, color_type=0, idat=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if idat is not None:
        out += chunk(b"IDAT", zlib.compress(idat))
    return out + chunk(b"IEND", b"")


def gray_png(side, value):
    rows = b"".join(b"\x00" + bytes([value]) * side for _ in range(side))
    return png(side, side, 0, rows)


def rgb_png(side):
    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * side for _ in range(side))
    return png(side, side, 2, rows)


def main():
    pixels = bytes(range(48))  # 3 images of 4x4
    good = idx([3, 4, 4], pixels)

    # IDX
    write("idx/truncated-images-idx3-ubyte", good[:-20])
    write("idx/truncated-images-idx3-ubyte.gz", gz(good)[:-12])
    flipped = bytearray(good)
    flipped[4] ^= 0x01  # image count 3 -> 16777219
    write("idx/flipped-count-images-idx3-ubyte", bytes(flipped))
    body = bytearray(gz(idx([3, 4, 4], bytes(48 * [7]))))
    body[len(body) // 2] ^= 0x55  # corrupt the deflate stream
    write("idx/flipped-body-images-idx3-ubyte.gz", bytes(body))
    write("idx/huge-images-idx3-ubyte", idx([10**9, 28, 28], bytes(16)))
    write("idx/huge-images-idx3-ubyte.gz", gz(idx([10**9, 28, 28], bytes(16))))
    write("idx/overflow-images-idx3-ubyte", idx([2**32 - 1] * 4, bytes(16)))
    write("idx/labels-idx1-ubyte", idx([3], bytes([1, 2, 3])))
    write("idx/extra-images-idx3-ubyte", good + b"\x00" * 5)
    write("idx/zero-images-idx3-ubyte", idx([0, 28, 28], b""))
    write("idx/float-images-idx3-ubyte", idx([1, 2, 2], bytes(16), type_code=0x0D))
    write("idx/fourdim-images-idx3-ubyte", idx([1, 1, 2, 2], bytes(4)))
    write("idx/empty-images-idx3-ubyte", b"")
    write("idx/header-only-images-idx3-ubyte", good[:6])
    write("idx/count-images-idx3-ubyte", good)
    write("idx/count-labels-idx1-ubyte", idx([2], bytes([1, 2])))

    # NPY
    write("npy/text.npy", b"just some text, not an array\n")
    write("npy/empty.npy", b"")
    write("npy/cut-header.npy", npy_f4([1, 2, 2], [0.5] * 4)[:30])
    write("npy/bad-header.npy", npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1, 2, 2), }", bytes(16)))
    write("npy/version-9.npy", npy_f4([1, 2, 2], [0.5] * 4)[:6] + b"\x09\x00" + npy_f4([1, 2, 2], [0.5] * 4)[8:])
    write("npy/complex.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1, 2, 2), }", bytes(32)))
    write("npy/int32.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2, 2), }", bytes(16)))
    write("npy/object.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1, 2, 2), }", bytes(32)))
    write("npy/flat.npy", npy_f4([2, 8], [0.5] * 16))
    write("npy/short-data.npy", npy_f4([2, 4, 4], [0.5] * 20))
    write("npy/long-data.npy", npy_f4([1, 4, 4], [0.5] * 20))
    write("npy/fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2, 2), }", bytes(16)))
    write("npy/huge-shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000, 1000), }", bytes(16)))
    write("npy/overflow-shape.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", bytes(16)))
    write("npy/nan.npy", npy_f4([2, 4, 4], [0.5] * 21 + [float("nan")] + [0.5] * 10))
    write("npy/inf.npy", npy_f4([2, 4, 4], [0.5] * 3 + [float("inf")] + [0.5] * 28))
    write("npy/scale-255.npy", npy_f4([1, 4, 4], [float(i * 17) for i in range(16)]))
    write("npy/channels-last.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 8, 8, 3), }", bytes(384)))
    write("npy/two-channel.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2, 8, 8), }", bytes(512)))
    write("npy/nested-header.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 5000 + "1" + ")" * 5000 + ", }", b""))
    write("npy/count.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4, 4), }", bytes(48)))
    write("npy/count_labels.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", bytes(16)))
    write("npy/neg.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 4), }", bytes(32)))
    write("npy/neg_labels.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", struct.pack("<qq", 1, -3)))

    # CIFAR
    write("cifar/short.bin", bytes(3072))
    write("cifar/empty.bin", b"")
    write("cifar/data_batch_1.bin", bytes([12]) + bytes(3072))
    write("cifar-folder/data_batch_1.bin", bytes([1]) + bytes(3072))
    write("cifar-folder/data_batch_2.bin", bytes([1]) + bytes(3000))

    # Images
    write("images/text-png/a.png", b"this is text, not a PNG\n")
    write("images/truncated-jpg/a.jpg", gray_png(8, 100)[:40])
    write("images/empty-png/a.png", b"")
    write("images/huge-png/a.png", png(100000, 100000, 0, bytes(64)))
    write("images/huge-rgb-png/a.png", png(30000, 30000, 2, bytes(64)))
    write("images/mixed-sizes/a.png", gray_png(8, 10))
    write("images/mixed-sizes/b.png", gray_png(9, 10))
    good = bytearray(gray_png(8, 10))
    good[45] ^= 0x40  # inside the IDAT data: its CRC no longer matches
    write("images/bad-crc/a.png", bytes(good))
    write("images/rgb28/a.png", rgb_png(28))
    write("images/rgb28/b.png", rgb_png(28))
    write("images/single.png", gray_png(8, 50)[:-30])


if __name__ == "__main__":
    main()
