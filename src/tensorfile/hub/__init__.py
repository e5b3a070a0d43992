"""Model hubs (Hugging Face, ModelScope) and plain HTTPS files, read by range requests.

This package sits beside `source.py` in the bytes-in layer: it turns `hf://`, `ms://` and `https://`
inputs into paths whose bytes come over HTTP, so format code reads a repo exactly as it reads a
local folder and never learns about HTTP. `refs` parses the spellings, `http` is the one HTTP
backend (retries, timeouts, counters), `listing` asks each hub's official client what a revision
holds, and `remote` offers the range-reading sources and paths over that listing.
"""
