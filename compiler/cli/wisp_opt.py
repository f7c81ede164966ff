"""wisp-opt: xdsl-opt for wisp's dialects and passes (plus --print-ir-after-all, --ir-dump-dir and
weights beside the IR)."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import DiagnosticException
from xdsl.xdsl_opt_main import xDSLOptMain

from compiler.cli.errors import guarded
from compiler.errors import WispError
from compiler.io_util import write_text_atomic
from compiler.ir import LocatingParser, make_context, verify
from compiler.model import Model
from compiler.pass_options import passes_listing
from compiler.pipeline import parse_pipeline, run_pipeline, timing_table
from compiler.registry import PASSES
from compiler.weights import WeightStore


class _Buffer(io.StringIO):
    """Collects the output; written to -o only once the whole run succeeded."""

    def close(self) -> None:  # xDSL closes the stream in a finally block
        pass


class WispOptMain(xDSLOptMain):
    def register_all_dialects(self) -> None:
        self.ctx = make_context()

    def register_all_frontends(self) -> None:
        def parse_mlir(stream: IO[bytes]) -> ModuleOp:
            try:
                text = stream.read().decode()
            except UnicodeDecodeError as e:
                raise WispError(
                    f"{self.get_input_name()}: not UTF-8 text (byte {e.start}: {e.reason})"
                ) from None
            return LocatingParser(
                self.ctx, text, self.get_input_name(), self.chunk_line_offset
            ).parse_module(not self.args.no_implicit_module)

        self.available_frontends["mlir"] = parse_mlir

    chunk_line_offset = 0
    wants_help = False

    def parse_chunk(
        self, chunk: IO[bytes], file_extension: str, start_offset: int = 0
    ) -> ModuleOp | None:
        self.chunk_line_offset = start_offset  # lines before this --split-input-file chunk
        return super().parse_chunk(chunk, file_extension, start_offset)

    def register_all_passes(self) -> None:
        for name, factory in PASSES.items():
            self.register_pass(name, factory)

    def register_all_targets(self) -> None:
        from xdsl.universe import Universe

        self.available_targets["mlir"] = Universe.get_multiverse().all_targets["mlir"]

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.prog = "wisp-opt"
        arg_parser.formatter_class = argparse.RawDescriptionHelpFormatter
        if self.wants_help:  # the listing imports every pass: only when it is printed
            arg_parser.epilog = "passes (-p 'a,b{opt=value}'):\n" + passes_listing()
        arg_parser.add_argument(
            "--print-ir-after-all", action="store_true", help="print the IR after every pass"
        )
        arg_parser.add_argument(
            "--ir-dump-dir", default=None, help="write NN-pass.mlir after every pass here"
        )
        arg_parser.add_argument(
            "--weights",
            default=None,
            help="weights .npz (default: FILE.weights.npz beside the input, if present)",
        )
        arg_parser.add_argument("--debug", action="store_true", help="show tracebacks")

    def setup_pipeline(self) -> None:
        self.passes = parse_pipeline(self.args.passes)
        self.weights = self._load_weights()

    def _load_weights(self) -> WeightStore | None:
        if self.args.weights:
            return WeightStore.load(self.args.weights)
        if self.args.input_file:
            beside = Path(self.args.input_file)
            beside = beside.with_name(beside.name.removesuffix(".mlir") + ".weights.npz")
            if beside.exists():
                return WeightStore.load(beside)
        return None

    def prepare_output(self) -> IO[str]:
        self.buffer = _Buffer()
        return self.buffer

    def apply_passes(self, prog: ModuleOp) -> None:
        try:
            verify(prog)
            if self.weights is not None:
                self.weights.check(prog)
            model = Model(Path(self.get_input_name()).stem, prog, self.weights or WeightStore())
            records = run_pipeline(
                model,
                self.passes,
                print_ir_after_all=self.args.print_ir_after_all,
                dump_dir=self.args.ir_dump_dir,
                with_weights=self.weights is not None,
            )
        except WispError as e:
            if self.args.verify_diagnostics:
                raise DiagnosticException(str(e)) from None
            raise
        if self.weights is not None:
            self.weights = model.weights  # type: ignore[assignment]
        if self.args.time_passes:
            print(timing_table(records), file=sys.stderr)

    def finish(self) -> None:
        text = self.buffer.getvalue()
        out = self.args.output_file
        if out is None:
            sys.stdout.write(text)
            return
        write_text_atomic(out, text)
        if self.weights is not None and self.passes:
            self.weights.save(
                Path(out).with_name(Path(out).name.removesuffix(".mlir") + ".weights.npz")
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        WispOptMain.wants_help = any(a in ("-h", "--help") for a in args)
        driver = WispOptMain(description="wisp-opt: run wisp passes on nn IR", args=args)
        driver.run()
        driver.finish()
        return 0

    return guarded("wisp-opt", body, args)


if __name__ == "__main__":
    sys.exit(main())
