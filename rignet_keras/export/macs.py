"""The graph counters the exporter writes into the manifest, from `rignet_keras.profile`.

`count_graph_macs` (multiply-adds of a traced function, an unknown batch counted as one image)
and `count_graph_parameters` (the weights it reads) are defined once, in `rignet_keras.profile`;
see its docstring for what is counted and what a dynamic shape does. `count_macs` here is the
name `rignet_keras.export.exporter` imports: the same function as `count_graph_macs`, not
`rignet_keras.profile.count_macs` (which takes a model and an input size).
"""

from rignet_keras.profile import count_graph_macs, count_graph_parameters

count_macs = count_graph_macs

__all__ = ["count_graph_macs", "count_graph_parameters", "count_macs"]
