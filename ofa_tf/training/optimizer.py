"""SGD with Nesterov momentum as PyTorch's `torch.optim.SGD` (the reference's optimizer).

PyTorch keeps a raw-gradient momentum buffer and scales by the current
learning rate at each update (`buf = m * buf + g; p -= lr * (g + m * buf)`),
while Keras' SGD accumulates learning-rate-scaled steps; the two differ as
soon as the learning rate changes (cosine decay changes it every step). One
fused `ResourceApplyMomentum` op per variable does PyTorch's update.
"""

from __future__ import annotations

from typing import Sequence

from ofa_tf._backend import tf


class MomentumSGD(tf.Module):
    """`torch.optim.SGD(momentum, nesterov, dampening=0)` with weight decay on some variables.

    Weight decay is added to the gradient before the momentum, as PyTorch's
    `weight_decay`; `decayed[i]` says whether variable `i` is decayed (the
    reference exempts BN parameters and biases). A variable that the step's
    subnets did not use is left alone, momentum and decay included, as
    PyTorch skips a parameter whose gradient is None.

    Create it inside the strategy's scope; call `apply` in a replica context
    (inside `strategy.run`): gradients are summed over replicas, then every
    copy of each variable takes the same update.

    Args:
        variables: the trainable variables (Keras or tf variables).
        decayed: one flag per variable.
        momentum: momentum factor (reference 0.9).
        weight_decay: L2 factor for the decayed variables (reference 3e-5).
        nesterov: Nesterov momentum (reference: on).
    """

    def __init__(
        self,
        variables: Sequence,
        decayed: Sequence[bool],
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        nesterov: bool = True,
    ):
        super().__init__(name="momentum_sgd")
        self.nesterov = bool(nesterov)
        self._variables = [getattr(v, "value", v) for v in variables]
        self.decayed = list(decayed)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.learning_rate = tf.Variable(0.0, trainable=False, name="learning_rate")
        self.momentum_buffers = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f"momentum_{i}")
            for i, v in enumerate(self._variables)
        ]

    def reset(self) -> None:
        """Zeroes the momentum buffers (a new optimizer, as upstream builds one per phase)."""
        for buffer in self.momentum_buffers:
            buffer.assign(tf.zeros(buffer.shape, buffer.dtype))

    def apply(self, gradients: Sequence[tf.Tensor], in_use: Sequence[tf.Tensor | None] | None = None) -> None:
        """Sums `gradients` over replicas and updates the variables (call in a replica context).

        Args:
            gradients: one per variable.
            in_use: one bool scalar per variable, False for a variable the step did
                not use (its gradient is zero): it keeps its value and momentum, no
                weight decay. None entries (or no list) mean in use. Variables that
                share a flag (e.g. one block's) share its scalar arithmetic.
        """
        context = tf.distribute.get_replica_context()
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, list(gradients))
        in_use = list(in_use) if in_use is not None else [None] * len(gradients)
        context.merge_call(self._update, args=(gradients, in_use))

    def _update(self, strategy: tf.distribute.Strategy, gradients, in_use) -> None:
        learning_rate = tf.convert_to_tensor(self.learning_rate)
        hyper = {}  # per distinct `in use` flag (one per block): (lr, momentum, decay) as scalars

        def hyper_parameters(used, dtype):
            key = (id(used), dtype)
            if key not in hyper:
                lr, momentum, decay = tf.cast(learning_rate, dtype), tf.constant(self.momentum, dtype), self.weight_decay
                if used is not None:  # unused: accum = accum * 1 + 0 and var -= 0 * ..., both unchanged
                    mask = tf.cast(used, dtype)
                    lr, momentum, decay = lr * mask, tf.where(used, momentum, tf.ones_like(momentum)), decay * mask
                hyper[key] = (lr, momentum, decay)
            return hyper[key]

        def update(variable, buffer, gradient, decayed, used):
            # an unused variable's gradient is exactly zero (skipped branch), so only decay needs the mask
            lr, momentum, decay = hyper_parameters(used, variable.dtype)
            if decayed and self.weight_decay:
                gradient = gradient + decay * tf.convert_to_tensor(variable)
            return tf.raw_ops.ResourceApplyMomentum(
                var=variable.handle,
                accum=buffer.handle,
                lr=lr,
                grad=gradient,
                momentum=momentum,
                use_nesterov=self.nesterov,
            )

        for variable, buffer, gradient, decayed, used in zip(
            self._variables, self.momentum_buffers, gradients, self.decayed, in_use
        ):
            strategy.extended.update(variable, update, args=(buffer, gradient, decayed, used), group=False)
