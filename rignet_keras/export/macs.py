"""Old import path of the graph counters, which live in `rignet_keras.profile`.

`count_graph_macs` and `count_graph_parameters` are defined once, in `rignet_keras.profile`;
nothing in the package imports this module. Import them from `rignet_keras.profile`.
"""

from rignet_keras.profile import count_graph_macs, count_graph_parameters

count_macs = count_graph_macs

__all__ = ["count_graph_macs", "count_graph_parameters", "count_macs"]
