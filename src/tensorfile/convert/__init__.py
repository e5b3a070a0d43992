"""Conversion between weight containers, and tensor-by-tensor comparison (`diff`)."""
