"""A MATMUL's dataflow (`flow`) changes its timing, never its result: a compiled model run with
every MATMUL forced to os gives bit-identical outputs and more cycles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from compile_util import random_inputs, small_zoo

from backend.compile import compile_module
from backend.config import load_config
from backend.cost import matmul_cycles
from backend.interpreter import run


def test_forcing_os_changes_cycles_not_outputs() -> None:
    cfg = load_config("spatten")
    m = small_zoo("deit-tiny", layers=1, dim=64, heads=2, mlp_dim=128, image=32, patch=8)
    c = compile_module(m.module, m.weights, cfg)
    flows = [int(i["flow"]) for i in c.program.instrs if i.cls.name == "MATMUL"]
    assert any(flows), "the lowering picked no ws/is MATMUL"
    forced = [
        replace(i, args={**i.args, "flow": 0}) if i.cls.name == "MATMUL" else i
        for i in c.program.instrs
    ]
    os_prog = replace(c.program, instrs=forced)
    x = random_inputs(m)
    picked, os_only = run(c.program, x, cfg), run(os_prog, x, cfg)
    assert picked.outputs.keys() == os_only.outputs.keys()
    for k, v in picked.outputs.items():
        assert np.array_equal(v, os_only.outputs[k]), k
    assert picked.report.cycles < os_only.report.cycles
    # each picked MATMUL is no slower than its os form (cost model, per instruction)
    for i in c.program.instrs:
        if i.cls.name == "MATMUL":
            mode = i.cls.field("mode").choices[int(i["mode"])]
            flow = i.cls.field("flow").choices[int(i["flow"])]
            dims = (int(i["m"]), int(i["n"]), int(i["k"]), mode, cfg)
            assert matmul_cycles(*dims, flow=flow) <= matmul_cycles(*dims, flow="os")
