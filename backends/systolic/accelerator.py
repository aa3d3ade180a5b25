"""What a systolic-array accelerator is: a description users can write in a TOML file, and named presets.

The fields are those SCALE-Sim takes (array shape, dataflow, three SRAMs, DRAM
bandwidth), plus what turns cycles into time and data into bytes: the clock and
the operand width. `binary_macs_per_pe` says how many 1-bit multiply-accumulates
(XNOR + popcount) one processing element does per cycle; 0 means the array has no
1-bit mode and runs binary convolutions at full width.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError
from ehdnas.core.options import make_config

DATAFLOWS = ("os", "ws", "is")  # output, weight, input stationary


@dataclass(frozen=True)
class Accelerator:
    name: str = "custom"
    rows: int = 32
    cols: int = 32
    dataflow: str = "ws"
    ifmap_sram_kb: int = 64
    filter_sram_kb: int = 64
    ofmap_sram_kb: int = 64
    dram_bytes_per_cycle: int = 16  # for each of the three SRAMs' DRAM ports, as in SCALE-Sim
    clock_mhz: float = 500.0
    bits: int = 8  # operand width of the array and of the data in SRAM and DRAM
    binary_macs_per_pe: int = 0  # 1-bit MACs per PE per cycle; 0: no 1-bit mode
    vector_lanes: int = 0  # elements per cycle of the vector unit (pooling, element-wise); 0: one per column

    def check(self) -> None:
        where = f"accelerator {self.name!r}"
        if self.dataflow not in DATAFLOWS:
            raise UserError(f"{where}: dataflow must be one of {', '.join(DATAFLOWS)}, not {self.dataflow!r}")
        for field in ("rows", "cols", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb", "dram_bytes_per_cycle"):
            if getattr(self, field) < 1:
                raise UserError(f"{where}: {field} must be at least 1")
        if self.clock_mhz <= 0:
            raise UserError(f"{where}: clock_mhz must be above 0")
        if self.bits not in (8, 16, 32):
            raise UserError(f"{where}: bits must be 8, 16 or 32")
        if self.binary_macs_per_pe < 0 or self.vector_lanes < 0:
            raise UserError(f"{where}: binary_macs_per_pe and vector_lanes must be 0 or more")

    @property
    def word_bytes(self) -> int:
        return self.bits // 8

    @property
    def lanes(self) -> int:
        return self.vector_lanes or self.cols

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, Accelerator] = {
    # A small int8 edge accelerator, weight stationary.
    "edge32": Accelerator(
        name="edge32", rows=32, cols=32, dataflow="ws", ifmap_sram_kb=64, filter_sram_kb=64, ofmap_sram_kb=32,
        dram_bytes_per_cycle=16, clock_mhz=500.0, bits=8, binary_macs_per_pe=8,
    ),
    # Eyeriss's 12x14 PE array with its 108 KB global buffer and 16-bit data; Eyeriss is row
    # stationary, which SCALE-Sim does not model: output stationary is the closest of the three.
    "eyeriss": Accelerator(
        name="eyeriss", rows=12, cols=14, dataflow="os", ifmap_sram_kb=54, filter_sram_kb=27, ofmap_sram_kb=27,
        dram_bytes_per_cycle=8, clock_mhz=200.0, bits=16,
    ),
    # A large int8 datacenter array (TPU-like), weight stationary, MiB-scale SRAM.
    "tpu128": Accelerator(
        name="tpu128", rows=128, cols=128, dataflow="ws", ifmap_sram_kb=4096, filter_sram_kb=4096,
        ofmap_sram_kb=2048, dram_bytes_per_cycle=64, clock_mhz=940.0, bits=8, binary_macs_per_pe=8,
    ),
}  # fmt: skip


class AcceleratorFileError(UserError):
    """A bad accelerator file. The message quotes what is wrong in it, for its owner (the CLI's user); `unquoted`
    names only the field at fault, for a server whose client may not read the file."""

    def __init__(self, message: str, unquoted: str) -> None:
        super().__init__(message)
        self.unquoted = unquoted


def load_accelerator(path: Path | str) -> Accelerator:
    """An accelerator from a TOML file of `Accelerator`'s fields; missing fields take the defaults."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such accelerator file")
    try:
        values = tomllib.loads(path.read_text())
    except OSError as err:
        raise UserError(f"{path}: cannot read the accelerator file ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        what = f"{path}: not a valid TOML accelerator description"
        raise AcceleratorFileError(f"{what} ({err})", what) from None
    values.setdefault("name", path.stem)
    where = f"accelerator file {path.name!r}"
    try:
        return make_config(Accelerator, values, where)
    except UserError as err:
        raise AcceleratorFileError(str(err), f"{where}: {_fault(values)}") from None


def _fault(values: dict[str, Any]) -> str:
    """Which of `values` makes a bad accelerator, without its value; a key that is no field is not named either,
    since its name is the file's too. Each field is checked on its own, so trying them one by one finds it."""
    known = {field.name for field in dataclasses.fields(Accelerator)}
    for key, value in values.items():
        if key not in known:
            return f"a key that is not a field of an accelerator (known: {', '.join(sorted(known))})"
        try:
            make_config(Accelerator, {key: value}, "")
        except UserError:
            return f"field {key!r} is not valid"
    return "not a valid accelerator description"
