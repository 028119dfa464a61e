"""Deployment: ONNX / int8 export, a text-in parser, the HTTP service, latency (DESIGN.md §7)."""
