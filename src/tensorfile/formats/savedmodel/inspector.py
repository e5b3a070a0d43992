"""The SavedModel inspect entry points: a SavedModel folder (or its saved_model.pb) and a frozen graph."""

from __future__ import annotations

from pathlib import Path

from ...model import (
    Identification,
    ModelInfo,
)
from ...protowire import LEN, MessageReader
from ...source import CachedSource, open_source
from .graph_def import GraphWalk
from .meta_graphs import read_saved_model
from .variables import inspect_variables


def inspect_frozen_graph(path: Path, ident: Identification) -> ModelInfo:
    """The Const tensors of a bare GraphDef, header-only: tensor_content is located, never read."""
    info = ModelInfo(str(path), "tf-savedmodel")
    with open_source(path) as raw:
        source = CachedSource(raw)
        walk = GraphWalk(source, str(path))
        meta = walk.graph(MessageReader(source))
    info.files.append({"path": str(path), "size_bytes": source.size})
    info.metadata = {"variant": "frozen-graph", **meta}
    info.tensors = walk.tensors
    info.warnings = walk.warnings
    if meta.get("variable_nodes") and not ident.details.get("variable_ops"):  # past identify's sample
        info.warnings.append(
            f"{meta['variable_nodes']} variable node(s): not frozen, their weights live in a checkpoint"
        )
    return info


def _graph_constants(graph_file: Path, info: ModelInfo) -> None:
    """Const tensors of the first meta graph's GraphDef (SavedModels without variables/)."""
    with open_source(graph_file) as raw:
        source = CachedSource(raw)
        reader = MessageReader(source)
        for f in reader.fields():
            if f.number != 2 or f.wire_type != LEN:  # SavedModel.meta_graphs
                continue
            meta_graph = reader.submessage(f)
            for g in meta_graph.fields():
                if g.number == 2 and g.wire_type == LEN:  # MetaGraphDef.graph_def
                    walk = GraphWalk(source, graph_file.name)
                    meta = walk.graph(meta_graph.submessage(g))
                    info.tensors.extend(walk.tensors)
                    info.warnings.extend(walk.warnings)
                    info.metadata["graph"] = {
                        k: meta[k] for k in ("node_count", "function_count", "op_types")
                    }
            return  # the first meta graph is the one loaders serve


def inspect_savedmodel(path: Path, ident: Identification) -> ModelInfo:
    if ident.details.get("variant") == "frozen-graph" and path.is_file():
        return inspect_frozen_graph(path, ident)
    folder = path if path.is_dir() else path.parent
    info = ModelInfo(str(path), "tf-savedmodel")
    graph_file = folder / ident.details.get("graph_file", "saved_model.pb")
    if not graph_file.is_file() and not path.is_dir():
        graph_file = path
    if graph_file.is_file():
        info.files.append({"path": graph_file.name, "size_bytes": graph_file.stat().st_size})
        if graph_file.suffix == ".pb":
            saved = read_saved_model(graph_file)
            graphs = saved["meta_graphs"]
            info.metadata["saved_model_schema_version"] = saved["schema_version"]
            info.metadata["meta_graph_count"] = len(graphs)
            if graphs:  # the first meta graph is what tf.saved_model.load serves by default
                info.metadata.update(graphs[0])
            if len(graphs) > 1:
                info.metadata["other_meta_graphs"] = graphs[1:]
        else:
            info.warnings.append("saved_model.pbtxt (text format): signatures are not read")
    for extra in ("fingerprint.pb", "keras_metadata.pb"):
        if (folder / extra).is_file():
            info.files.append({"path": extra, "size_bytes": (folder / extra).stat().st_size})
    if (folder / "variables").is_dir():
        inspect_variables(folder, info, graph_file)
    else:
        info.warnings.append("no variables/ folder: the weights, if any, are the graph's Const nodes")
        if graph_file.is_file() and graph_file.suffix == ".pb":
            _graph_constants(graph_file, info)
    return info


INSPECTS = {"tf-savedmodel": inspect_savedmodel}
