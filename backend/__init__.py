"""The modeled NPU: ISA, configs, cost model, lowering, assembler, interpreter."""
