"""A functional Keras model's graph as nodes and the tensors between them, walked from its input."""

from __future__ import annotations

import dataclasses
from typing import Any

from ofa_tf.errors import ConfigError


class NotRecognised(ConfigError):
    """A layer of the model that the reader cannot place; its message names the layer and why."""

    def __init__(self, node: "Node", why: str):
        super().__init__(f"layer {node.name!r} ({node.kind}) {why}")
        self.node = node


@dataclasses.dataclass(eq=False)
class Node:
    """One call of a layer (or of a Keras op, `x + 3.0`) in the model's graph.

    Args:
        operation: the layer or op.
        inputs: ids of its input tensors, in order.
        output: id of its output tensor.
        constants: its arguments that are not tensors (the 3.0 of `x + 3.0`).
        output_shape: its output's shape.
    """

    operation: Any
    inputs: tuple[int, ...]
    output: int
    constants: tuple[Any, ...]
    output_shape: tuple

    @property
    def kind(self) -> str:
        return type(self.operation).__name__

    @property
    def name(self) -> str:
        return self.operation.name

    def config(self) -> dict[str, Any]:
        return self.operation.get_config() if hasattr(self.operation, "get_config") else {}


class Graph:
    """The model's nodes by the tensor each produces, and each tensor's consumers."""

    def __init__(self, model: Any):
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ConfigError(f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs: expected one image input and one logits output")
        self.producer: dict[int, Node] = {}
        self.consumers: dict[int, list[Node]] = {}
        self.input, self.output = id(model.inputs[0]), id(model.outputs[0])
        self.input_shape = tuple(model.inputs[0].shape)
        self._walk_back(model.outputs[0])
        position = {id(operation): index for index, operation in enumerate(model.operations)}  # topological
        self.position = lambda node: position.get(id(node.operation), 0)
        for node in self.producer.values():
            for tensor in node.inputs:
                self.consumers.setdefault(tensor, []).append(node)
        for consumers in self.consumers.values():  # network order, whatever order the walk met them
            consumers.sort(key=self.position)

    def _walk_back(self, output: Any) -> None:
        """Collects every node the output depends on, from the tensors' Keras history."""
        stack, seen = [output], set()
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen or id(tensor) == self.input:
                continue
            seen.add(id(tensor))
            operation, node_index, _ = tensor._keras_history
            node = operation._inbound_nodes[node_index]
            if hasattr(operation, "layers") and hasattr(operation, "operations"):
                raise ConfigError(
                    f"layer {operation.name!r} is a nested model: build one functional model, "
                    "e.g. keras.Model(base.input, head(base.output))"
                )
            inputs = tuple(node.input_tensors)
            constants = tuple(a for a in node.arguments.args if not _is_tensor(a) and not isinstance(a, (list, tuple)))
            self.producer[id(tensor)] = Node(operation, tuple(id(t) for t in inputs), id(tensor), constants, tuple(tensor.shape))
            stack.extend(inputs)

    def consumers_of(self, tensor: int) -> list[Node]:
        return self.consumers.get(tensor, [])

    def next_node(self, tensor: int, after: Node | None = None) -> Node | None:
        """The one layer `tensor` feeds, None at the output; a tensor feeding several is refused."""
        consumers = self.consumers_of(tensor)
        if not consumers:
            return None
        if len(consumers) > 1:
            names = ", ".join(repr(n.name) for n in consumers)
            node = after or consumers[0]
            raise NotRecognised(node, f"feeds {len(consumers)} layers ({names}): only a residual Add or a squeeze-excite Multiply may branch")
        return consumers[0]

    def shape(self, tensor: int) -> tuple:
        return self.input_shape if tensor == self.input else self.producer[tensor].output_shape


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history")
