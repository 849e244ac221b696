"""The purgatory blob: the code that runs between the old kernel and the new one.

Built at package build time from csrc/purgatory/ into kexec_py/data/purgatory.bin, a
position-independent flat image. At load time the parameter block at offset 32 is filled
in (layout: csrc/purgatory/params.h, docs/formats/purgatory.md): the kernel entry, the
boot_params address for %rsi, the serial port for messages, and the SHA-256 regions and
digest that purgatory checks before it jumps.
"""
import hashlib
import os
import struct
from dataclasses import dataclass

from ..native import lib
from ..errors import KexecError

# The layout comes from csrc/purgatory/params.h through the cffi module; the Struct that
# packs it is checked field by field against those offsets.
PARAMS_OFFSET = lib.PURGATORY_PARAMS_OFFSET
MAGIC = lib.PURGATORY_MAGIC  # "KPYPURG1"
MAX_REGIONS = lib.PURGATORY_MAX_REGIONS
_FIELDS = (("Q", lib.PP_OFF_MAGIC), ("Q", lib.PP_OFF_ENTRY), ("Q", lib.PP_OFF_BOOT_PARAMS),
           ("H", lib.PP_OFF_SERIAL_PORT), ("B", lib.PP_OFF_NO_CHECKS),
           ("B", lib.PP_OFF_NR_REGIONS), ("I", None), ("32s", lib.PP_OFF_DIGEST))
PARAMS = struct.Struct("<" + "".join(f for f, _ in _FIELDS) + "QQ" * MAX_REGIONS)
for _i, (_f, _off) in enumerate(_FIELDS):
    assert _off is None or struct.calcsize("<" + "".join(f for f, _ in _FIELDS[:_i])) == _off, \
        "purgatory.py and params.h disagree on the field at %s" % _off
assert struct.calcsize("<" + "".join(f for f, _ in _FIELDS)) == lib.PP_OFF_REGIONS
assert PARAMS.size == lib.PURGATORY_PARAMS_SIZE
SERIAL_COM1 = 0x3F8


def blob_path():
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "data", "purgatory.bin")


def load_blob():
    path = blob_path()
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise KexecError("purgatory blob %s is missing (%s): reinstall kexec-py"
                         % (path, e.strerror)) from None
    if len(blob) < PARAMS_OFFSET + PARAMS.size or \
            struct.unpack_from("<Q", blob, PARAMS_OFFSET)[0] != MAGIC:
        raise KexecError("%s is not a kexec-py purgatory blob" % path)
    return blob


@dataclass(frozen=True)
class PurgatoryParams:
    entry: int
    boot_params: int
    regions: tuple          # ((start, data), ...) that purgatory hashes, in order
    serial_port: int = 0
    no_checks: bool = False

    def digest(self):
        h = hashlib.sha256()
        for _, data in self.regions:
            h.update(data)
        return h.digest()


def patch(blob, params):
    """A copy of blob with the parameter block filled in."""
    if len(params.regions) > MAX_REGIONS:
        raise KexecError("purgatory checks at most %d regions, got %d"
                         % (MAX_REGIONS, len(params.regions)))
    digest = params.digest()
    flat = []
    for start, data in params.regions:
        flat += [start, len(data)]
    flat += [0, 0] * (MAX_REGIONS - len(params.regions))
    out = bytearray(blob)
    PARAMS.pack_into(out, PARAMS_OFFSET, MAGIC, params.entry, params.boot_params,
                     params.serial_port, 1 if params.no_checks else 0, len(params.regions),
                     0, digest, *flat)
    return bytes(out)
