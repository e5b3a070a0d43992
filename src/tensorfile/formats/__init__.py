"""One module per format family; `registry` holds the detection and inspection tables.

Nothing is imported here, so a caller that needs one format's helpers (the scanner reading an
.npy header, say) does not pay for importing every format.
"""
