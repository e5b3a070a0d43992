"""GGUF output: llama.cpp's converter and quantizer, redone as a streaming writer (no torch)."""
