"""TensorFlow SavedModel: a folder with saved_model.pb (a SavedModel protobuf) and variables/.

Also TF1 frozen graphs: a bare GraphDef protobuf (frozen_graph.pb, written by tf.io.write_graph after
convert_variables_to_constants) whose weights are Const nodes. They are reported as tf-savedmodel with
variant "frozen-graph": the same graph messages, the same loader family and the same risk (graph ops
run when the graph does); only the container differs.

detect finds all three; inspector reads saved_model.pb's meta graphs (meta_graphs), the weights in
variables/ (variables, through tensor_bundle's index table and object_graph's duplicate check) or a
graph's Const nodes (graph_def); tf_types holds the DataType and shape helpers they share.
"""

from __future__ import annotations

from .detect import detect_dir, detect_file, detect_graph_def
from .graph_def import graph_op_counts
from .inspector import INSPECTS, inspect_frozen_graph, inspect_savedmodel
from .meta_graphs import read_saved_model
from .object_graph import saved_object_graph
from .tensor_bundle import _bundle_entry, read_table, snappy_decompress
from .tf_types import TF_DTYPES, tf_dtype_name, tf_nbytes

__all__ = [
    "INSPECTS",
    "TF_DTYPES",
    "_bundle_entry",
    "detect_dir",
    "detect_file",
    "detect_graph_def",
    "graph_op_counts",
    "inspect_frozen_graph",
    "inspect_savedmodel",
    "read_saved_model",
    "read_table",
    "saved_object_graph",
    "snappy_decompress",
    "tf_dtype_name",
    "tf_nbytes",
]
