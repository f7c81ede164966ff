"""The npu dialect agrees with the ISA table; its IR prints and parses back."""

from __future__ import annotations

from compile_util import small_zoo

from backend.compile import compile_module
from backend.isa import HEADER, ISA, make
from backend.npu_dialect import NPU, NPU_OPS, from_op, parse_instrs, print_instrs, to_module, to_op


def test_one_op_per_instruction_class() -> None:
    assert len(NPU_OPS) == len(ISA)
    assert [op.name for op in NPU_OPS] == [f"npu.{c.mnemonic}" for c in ISA]
    assert {op.name for op in NPU.operations} == {f"npu.{c.mnemonic}" for c in ISA}


def test_properties_are_the_fields() -> None:
    hdr = {f.name for f in HEADER} - {"opcode"}
    for c, op in zip(ISA, NPU_OPS, strict=True):
        props = set(op.get_irdl_definition().properties)
        assert props == {f.name for f in c.fields} | hdr, c.name


def test_op_round_trip() -> None:
    ins = make("ROW", op="softmax", dtype="fp32", dst_buf="acc", dst_off=64, dst_stride=8,
               src_buf="acc", src_off=64, src_stride=8, rows=2, cols=8, scale=0.125, causal=1,
               wait=4, signal=2, comment="blocks.0.attn nn.attention#3")  # fmt: skip
    op = to_op(ins)
    op.verify()
    back = from_op(op)
    assert back == ins and back.comment == ins.comment and back.wait == 4


def test_fast_printer_matches_xdsl_and_parses() -> None:
    m = small_zoo("gpt2", layers=1, dim=32, heads=2, mlp_dim=64, seq=8, vocab=20)
    c = compile_module(m.module, m.weights, "edge")
    instrs = c.program.instrs
    text = c.npu_ir_scheduled
    assert parse_instrs(text) == instrs
    assert [i.comment for i in parse_instrs(text)] == [i.comment for i in instrs]
    assert parse_instrs(str(to_module(instrs))) == instrs
    assert print_instrs(parse_instrs(text)) == text
    lowered = parse_instrs(c.npu_ir_lowered)
    assert all(i.wait == 0 and i.signal == 0 for i in lowered)
    assert len(lowered) + 1 == len(instrs)  # + FINISH


def test_every_nn_op_has_a_lowering_rule() -> None:
    from backend.lower import RULES
    from dialects.nn import NN_OPS

    assert [op.name for op in NN_OPS if op not in RULES] == []
