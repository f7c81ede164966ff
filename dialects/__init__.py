"""IR definitions: the nn dialect (and later quant/npu). Imports only xDSL."""
