"""The ISA table: the classes and fields the brief requires, widths, make() validation."""

from __future__ import annotations

import pytest

from backend.errors import BackendError, IsaError
from backend.isa import (
    BY_MNEMONIC,
    BY_NAME,
    BY_OPCODE,
    HEADER,
    ISA,
    Buf,
    DType,
    Instr,
    Queue,
    make,
    queue_mask,
)

# The interface the interpreter codes against, copied from the brief (not from isa.py).
REQUIRED = {
    "LOAD": ("load", "dtype dst_buf dst_off dst_stride src_addr src_stride rows cols"),
    "LOADBP": ("load", "plane dst_buf dst_off dst_stride src_addr src_stride rows cols"),
    "GATHER": (
        "load",
        "dtype dst_buf dst_off dst_stride src_addr src_stride idx_buf idx_off rows cols",
    ),
    "STORE": ("store", "dtype src_buf src_off src_stride dst_addr dst_stride rows cols"),
    # issue 10 (the KV cache resident in DRAM): GATHER's mirror, bounded by the table's rows
    "SCATTER": (
        "store",
        "dtype src_buf src_off src_stride dst_addr dst_stride dst_rows idx_buf idx_off rows cols",
    ),
    "MATMUL": (
        "matrix",
        "mode acc tb a_buf a_off a_stride b_buf b_off b_stride c_buf c_off c_stride m n k "
        "meta_buf meta_off mask mask_buf mask_off",
    ),
    "VEC": (
        "vector",
        "op bcast dtype dst_buf dst_off dst_stride a_buf a_off a_stride b_buf b_off b_stride "
        "rows cols imm",
    ),
    "REQUANT": (
        "vector",
        "out_dtype per_col dst_buf dst_off dst_stride src_buf src_off src_stride rows cols "
        "mult shift zp mult_buf mult_off",
    ),
    "ROW": (
        "vector",
        "op dtype dst_buf dst_off dst_stride src_buf src_off src_stride rows cols scale eps "
        "causal row0 g_buf g_off",
    ),
    "MOVE": (
        "vector",
        "src_dtype dst_dtype transpose dst_buf dst_off dst_stride src_buf src_off src_stride "
        "rows cols scale",
    ),
    "VGATHER": (
        "vector",
        "dtype dst_buf dst_off dst_stride src_buf src_off src_stride idx_buf idx_off rows cols",
    ),
    "TOPK": ("select", "src_buf src_off src_stride rows n k dst_buf dst_off"),
    "IMPACC": (
        "select",
        "mode src_dtype src_buf src_off src_stride rows cols heads dst_buf dst_off",
    ),
    "PREDICT": (
        "select",
        "a_buf a_off a_stride b_buf b_off b_stride tb m n k c_buf c_off c_stride",
    ),
    "CMP": ("select", "reduce cmp dtype src_buf src_off src_stride rows cols imm pdst"),
    "SETP": ("select", "pdst value"),
    "NOP": ("select", ""),
    "FINISH": ("select", ""),
}

ENUMS = {
    ("LOADBP", "plane"): "msb lsb",
    ("MATMUL", "mode"): "fp16 int8 int4w sp24 sp24h",
    ("VEC", "op"): "add sub mul div max min exp gelu gelu_tanh tanh relu copy",
    ("VEC", "bcast"): "none row col scalar",
    ("REQUANT", "out_dtype"): "int8 int4",
    ("ROW", "op"): "softmax layernorm rowmax rowsum",
    ("IMPACC", "mode"): "colsum headmag",
    ("CMP", "reduce"): "max min sum",
    ("CMP", "cmp"): "lt le gt ge eq ne",
}


def test_enums_match_the_brief() -> None:
    assert [q.value for q in Queue] == [0, 1, 2, 3, 4]
    assert [b.name for b in Buf] == ["ACT", "WGT", "ACC", "VEC", "IDX"]
    assert {d.name: d.bits for d in DType} == {
        "FP16": 16,
        "FP32": 32,
        "INT8": 8,
        "INT4": 4,
        "INT32": 32,
    }
    assert DType.INT4.nbytes(5) == 3 and DType.FP16.nbytes(3) == 6
    assert str(DType.FP16.np_dtype) == "float16" and str(DType.INT4.np_dtype) == "int8"


def test_required_classes_fields_and_queues() -> None:
    assert set(BY_NAME) == set(REQUIRED)
    for name, (queue, fields) in REQUIRED.items():
        cls = BY_NAME[name]
        assert cls.queue == Queue[queue.upper()], name
        assert set(fields.split()) <= {f.name for f in cls.fields}, name
        assert cls.mnemonic == name.lower()
    for (cname, fname), choices in ENUMS.items():
        assert BY_NAME[cname].field(fname).choices == tuple(choices.split())


def test_widths_cover_realistic_models() -> None:
    for cls in ISA:
        assert cls.used_bits <= 256
        for f in cls.fields:
            if f.name in ("rows", "cols", "m", "n", "k"):
                assert f.hi == 65535, (cls.name, f.name)
            if f.name.endswith("_addr"):
                assert f.hi == 2**32 - 1
            if f.name.endswith("_off"):
                assert f.hi >= 2**20, (cls.name, f.name)
            if f.name.endswith("_stride"):
                assert f.hi >= 2**16 - 1
    assert [(h.name, h.bits) for h in HEADER] == [
        ("opcode", 6),
        ("pred", 4),
        ("pneg", 1),
        ("wait", 5),
        ("signal", 5),
    ]


def test_lookups_are_consistent() -> None:
    for cls in ISA:
        assert BY_OPCODE[cls.opcode] is cls and BY_MNEMONIC[cls.mnemonic] is cls
    assert 0 not in BY_OPCODE  # an all-zero word is never an instruction


def _load(**kw: object) -> Instr:
    args: dict[str, object] = dict(
        dtype="fp16", dst_buf="act", dst_off=0, dst_stride=64, src_addr=0, src_stride=128
    )
    args.update(rows=4, cols=64)
    args.update(kw)
    return make("LOAD", **args)


def test_make_accepts_names_members_and_ints() -> None:
    a = _load(dtype="fp16", dst_buf="wgt")
    b = _load(dtype=DType.FP16, dst_buf=Buf.WGT)
    c = _load(dtype=0, dst_buf=1)
    assert a == b == c
    assert a.args["dtype"] == 0 and type(a.args["dst_buf"]) is int
    assert a["rows"] == 4


def test_make_fills_defaults_and_keeps_field_order() -> None:
    i = make("SETP", pdst=3, value=1)
    assert i.args == {"pdst": 3, "value": 1}
    v = make(
        "VEC",
        op="relu",
        dtype="fp32",
        dst_buf="vec",
        dst_off=0,
        dst_stride=8,
        a_buf="vec",
        a_off=0,
        a_stride=8,
        rows=1,
        cols=8,
    )
    assert list(v.args) == [f.name for f in v.cls.fields]
    assert v.args["bcast"] == 0 and v.args["imm"] == 0.0 and v.args["b_stride"] == 0


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"dst_off": 2**22}, "'dst_off' value 4194304 out of range (allowed 0..4194303)"),
        ({"rows": 65536}, "'rows' value 65536 out of range (allowed 0..65535)"),
        ({"rows": -1}, "'rows' value -1 out of range"),
        ({"src_addr": 2**32}, "'src_addr'"),
        ({"dtype": "int9"}, "'dtype' must be one of fp16|fp32|int8|int4|int32"),
        ({"dtype": 5}, "'dtype' value 5 out of range (allowed one of fp16|"),
        ({"rows": 1.5}, "'rows' must be an integer"),
        ({"bogus": 1}, "unknown field(s) bogus"),
        ({"signal": 1}, "names its own queue 'load'"),
        ({"wait": 32}, "'wait' value 32 out of range"),
        ({"pred": 16}, "'pred' value 16 out of range"),
    ],
)
def test_make_rejects_with_field_and_range(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(IsaError) as e:
        _load(**kw)
    assert needle in str(e.value)
    assert isinstance(e.value, BackendError)


def test_make_max_values_accepted() -> None:
    i = _load(dst_off=2**22 - 1, dst_stride=65535, src_addr=2**32 - 1, rows=65535, cols=65535)
    assert i.args["src_addr"] == 2**32 - 1
    r = make(
        "REQUANT",
        out_dtype="int4",
        dst_buf="vec",
        dst_off=0,
        dst_stride=1,
        src_buf="acc",
        src_off=0,
        src_stride=1,
        rows=1,
        cols=2,
        mult=-(2**31),
        shift=63,
        zp=-128,
    )
    assert r.args["mult"] == -(2**31) and r.args["zp"] == -128
    with pytest.raises(IsaError, match="'zp' value 128 out of range .allowed -128..127"):
        make("REQUANT", **{**r.args, "zp": 128})  # type: ignore[arg-type]


def test_make_missing_field_and_unknown_class() -> None:
    with pytest.raises(IsaError, match="missing required field 'pdst'"):
        make("SETP", value=1)
    with pytest.raises(IsaError, match="unknown instruction class 'FOO'"):
        make("FOO")
    with pytest.raises(IsaError, match=r"'pdst' value 0 out of range \(allowed 1..15\)"):
        make("SETP", pdst=0, value=1)


def test_float_immediates_must_be_exact_f32() -> None:
    base = dict(reduce="max", cmp="lt", dtype="fp32", src_buf="vec", src_off=0, src_stride=1)
    base.update(rows=1, cols=1, pdst=1)
    assert make("CMP", imm=0.5, **base).args["imm"] == 0.5
    assert make("CMP", imm=float("-inf"), **base).args["imm"] == float("-inf")
    with pytest.raises(IsaError, match="'imm' value 0.1 is not exactly representable"):
        make("CMP", imm=0.1, **base)
    with pytest.raises(IsaError, match="'imm' must not be NaN"):
        make("CMP", imm=float("nan"), **base)
    with pytest.raises(IsaError, match="'imm' must be a float"):
        make("CMP", imm="big", **base)


def test_queue_mask() -> None:
    assert queue_mask(Queue.LOAD, Queue.SELECT) == 0b10001
