"""The console's graphs as node-link data, and their GraphML form (both readable by NetworkX).

A graph is a plain dict in NetworkX's node-link layout (``networkx.node_link_graph(data)`` reads
it): ``{"directed", "multigraph", "graph", "nodes": [{"id", ...}], "edges": [{"source",
"target", ...}]}``. Every node has ``kind`` (``user`` or ``item``), ``role`` (where it sits in the
drawing), ``layer`` (its column, left to right) and ``label``; every edge has ``weight``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["explanation_graph", "item_graph", "to_graphml"]

Graph = dict[str, Any]


def _graph(name: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> Graph:
    return {
        "directed": True,
        "multigraph": False,
        "graph": {"name": name},
        "nodes": nodes,
        "edges": edges,
    }


def explanation_graph(explanation: dict[str, Any]) -> Graph:
    """The paths of ``GET /v1/explain`` as a graph: user -> their items -> recommended item.

    Parameters
    ----------
    explanation : dict
        The explain API's answer: ``user_id``, ``item_id`` and ``paths``, each with
        ``via_item_id``, ``user_event``, ``user_weight``, ``co_users``, ``similarity``, ``weight``.

    Returns
    -------
    dict
        Nodes: the user (role ``user``), each item of a path (role ``via``, with the path's
        ``weight``) and the recommended item (role ``target``). Edges: user -> item weighted by
        the user's weight of it (``event``: the strongest event type), item -> recommended item
        weighted by their co-occurrence similarity (``co_users``: the users of both).
    """
    user_id, item_id = str(explanation["user_id"]), str(explanation["item_id"])
    user_node, target_node = f"user:{user_id}", f"item:{item_id}"
    nodes: list[dict[str, Any]] = [
        {"id": user_node, "kind": "user", "role": "user", "layer": 0, "label": user_id},
        {"id": target_node, "kind": "item", "role": "target", "layer": 2, "label": item_id},
    ]
    edges: list[dict[str, Any]] = []
    for p in explanation["paths"]:
        via = f"item:{p['via_item_id']}"
        nodes.append(
            {
                "id": via,
                "kind": "item",
                "role": "via",
                "layer": 1,
                "label": str(p["via_item_id"]),
                "path_weight": float(p["weight"]),
            }
        )
        edges.append(
            {
                "source": user_node,
                "target": via,
                "weight": float(p["user_weight"]),
                "event": str(p["user_event"]),
                "label": str(p["user_event"]),
            }
        )
        co = int(p["co_users"])
        edges.append(
            {
                "source": via,
                "target": target_node,
                "weight": float(p["similarity"]),
                "co_users": co,
                "label": f"{co} co-users" if co else "similar",
            }
        )
    return _graph(f"why {item_id} for {user_id}", nodes, edges)


def item_graph(
    item_id: str,
    similar: Sequence[tuple[str, float]],
    users: Sequence[tuple[str, float]],
) -> Graph:
    """An item's neighbourhood: its users (user -> item) and its similar items (item -> item).

    Parameters
    ----------
    item_id : str
    similar : sequence of (item_id, score)
        E.g. ``GET /v1/items/{item_id}/similar``.
    users : sequence of (user_id, weight)
        Users who interacted with the item and the weight of their interaction.
    """
    centre = f"item:{item_id}"
    nodes: list[dict[str, Any]] = [
        {"id": centre, "kind": "item", "role": "target", "layer": 1, "label": item_id}
    ]
    edges: list[dict[str, Any]] = []
    for user_id, weight in users:
        node = f"user:{user_id}"
        nodes.append({"id": node, "kind": "user", "role": "user", "layer": 0, "label": user_id})
        edges.append({"source": node, "target": centre, "weight": float(weight), "label": ""})
    for other, score in similar:
        node = f"item:{other}"
        nodes.append({"id": node, "kind": "item", "role": "via", "layer": 2, "label": other})
        edges.append(
            {"source": centre, "target": node, "weight": float(score), "label": f"{score:.3g}"}
        )
    return _graph(f"neighbourhood of {item_id}", nodes, edges)


_GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"


def _graphml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    return "string"


def to_graphml(graph: Graph) -> str:
    """``graph`` (node-link dict) as a GraphML document (``networkx.read_graphml`` reads it).

    Each attribute becomes a GraphML key typed by its first value (``long``, ``double``,
    ``boolean`` or ``string``); node ids keep their node-link ``id``.
    """
    ET.register_namespace("", _GRAPHML_NS)
    root = ET.Element(f"{{{_GRAPHML_NS}}}graphml")
    keys: dict[tuple[str, str], str] = {}
    for domain, rows, skip in (
        ("node", graph["nodes"], {"id"}),
        ("edge", graph["edges"], {"source", "target"}),
    ):
        for row in rows:
            for name, value in row.items():
                if name in skip or (domain, name) in keys:
                    continue
                key_id = f"{domain[0]}{len(keys)}"
                keys[(domain, name)] = key_id
                ET.SubElement(
                    root,
                    f"{{{_GRAPHML_NS}}}key",
                    {
                        "id": key_id,
                        "for": domain,
                        "attr.name": name,
                        "attr.type": _graphml_type(value),
                    },
                )
    g = ET.SubElement(
        root,
        f"{{{_GRAPHML_NS}}}graph",
        {"id": str(graph.get("graph", {}).get("name", "G")), "edgedefault": "directed"},
    )

    def data(parent: ET.Element, domain: str, row: dict[str, Any], skip: set[str]) -> None:
        for name, value in row.items():
            if name in skip:
                continue
            d = ET.SubElement(parent, f"{{{_GRAPHML_NS}}}data", {"key": keys[(domain, name)]})
            d.text = str(value).lower() if isinstance(value, bool) else str(value)

    for node in graph["nodes"]:
        el = ET.SubElement(g, f"{{{_GRAPHML_NS}}}node", {"id": str(node["id"])})
        data(el, "node", node, {"id"})
    for edge in graph["edges"]:
        el = ET.SubElement(
            g,
            f"{{{_GRAPHML_NS}}}edge",
            {"source": str(edge["source"]), "target": str(edge["target"])},
        )
        data(el, "edge", edge, {"source", "target"})
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
