"""One tf.function trace serves every subnet, and gradients reach the shared weights."""

import numpy as np
import pytest

from ofa_tf._backend import keras, tf
from ofa_tf.training.graph_options import graph_rewrites_off

from conftest import build_tiny


def make_train_step(net):
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True)
    optimizer.build(net.trainable_variables)  # create slots outside the traced step
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, net(images, training=True))
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    return train_step


def test_training_step_traces_once_over_many_subnets():
    net = build_tiny(seed=1)
    step = make_train_step(net)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(4, 32, 32, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 10, size=4))
    seen = set()
    for i in range(24):
        config = net.sample_active_subnet(seed=i)
        seen.add((tuple(config["ks"]), tuple(config["d"])))
        with graph_rewrites_off():  # as the trainer runs its step (grappler does not change tracing)
            loss = float(step(images, labels))
        assert np.isfinite(loss)
    assert len(seen) == 24
    assert step.experimental_get_tracing_count() == 1


def test_the_graph_follows_the_active_subnet():
    net = build_tiny(seed=2)
    forward = tf.function(lambda x: net(x, training=False))
    images = tf.constant(np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype(np.float32))
    outputs = []
    for config in (net.space.max_config(), net.space.min_config()):
        net.set_active_config(config)
        expected = net.get_active_subnet(resolution=32)(images).numpy()
        got = forward(images).numpy()
        assert np.abs(expected - got).max() <= 1e-4
        outputs.append(got)
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-2
    assert forward.experimental_get_tracing_count() == 1


def gradients_for(net, config, images, labels):
    net.set_active_config(config)
    with tf.GradientTape() as tape:
        logits = net(images, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    variables = {v.path: v for v in net.trainable_variables}
    grads = tape.gradient(loss, list(variables.values()))
    return {path: (g.numpy() if g is not None else None) for path, g in zip(variables, grads)}


def test_gradients_reach_transform_matrices_and_only_active_slices():
    net = build_tiny(seed=3)
    rng = np.random.default_rng(2)
    images = tf.constant(rng.normal(size=(4, 32, 32, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 10, size=4))
    space = net.space
    config = space.normalize(ks=3, e=3, d=4)
    grads = gradients_for(net, config, images, labels)
    block = net.blocks[5]
    path = lambda var: var.path
    # kernel 3 goes through both transforms: 7to5 and 5to3 matrices get gradients
    for name in ("7to5_matrix", "5to3_matrix"):
        g = grads[path(block.depthwise.transform_matrices[name])]
        assert g is not None and np.abs(g).sum() > 0
    # only the centre 5x5 of the 7x7 kernel and the first mid channels are used
    g = grads[path(block.depthwise.kernel)]
    mid = block.mid_channels[0]
    assert np.abs(g[1:6, 1:6, :mid]).sum() > 0
    assert np.abs(g[0]).sum() == 0 and np.abs(g[:, :, mid:]).sum() == 0
    # with kernel 7 the matrices get no gradient
    grads7 = gradients_for(net, space.normalize(ks=7, e=6, d=4), images, labels)
    g7 = grads7[path(block.depthwise.transform_matrices["7to5_matrix"])]
    assert g7 is None or np.abs(g7).sum() == 0


def test_skipped_blocks_get_no_gradient():
    net = build_tiny(seed=4)
    rng = np.random.default_rng(3)
    images = tf.constant(rng.normal(size=(4, 32, 32, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 10, size=4))
    for _ in range(3):  # fresh buffers each time: an uninitialized one would show garbage
        grads = gradients_for(net, net.space.normalize(ks=5, e=4, d=2), images, labels)
        for variable in net.blocks[3].trainable_variables:  # depth index 3 of stage 0
            assert grads[variable.path] is None or not np.any(grads[variable.path]), variable.path
    kept = net.blocks[1].project_conv.kernel.path
    assert np.abs(grads[kept]).sum() > 0


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_kernel_gradient_is_zero_for_an_empty_batch(stride):
    from ofa_tf.layers.depthwise import ElasticDepthwiseConv2D

    layer = ElasticDepthwiseConv2D(kernel_size_list=(3, 5, 7), strides=stride)
    layer.build((None, None, None, 8))
    rng = np.random.default_rng(stride)
    for batch in (0, 0, 0, 2):
        tf.random.normal([256, 1024]) * 1e30  # churn the allocator so that stale buffers hold garbage
        images = tf.constant(rng.normal(size=(batch, 9, 9, 8)).astype(np.float32))
        with tf.GradientTape(persistent=True) as tape:
            ours = layer(images, kernel_index=tf.constant(1))
            kernel, _ = layer._selected_kernel(8, tf.constant(1))
            padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])  # the 5x5 kernel's symmetric padding
            reference = tf.nn.depthwise_conv2d(padded, kernel, (1, stride, stride, 1), "VALID")
            loss, reference_loss = tf.reduce_sum(ours * ours), tf.reduce_sum(reference * reference)
        gradient = tape.gradient(loss, layer.kernel).numpy()
        if batch == 0:
            assert not np.any(gradient)
        else:  # the same gradient as TF's own for a non-empty batch
            np.testing.assert_allclose(gradient, tape.gradient(reference_loss, layer.kernel).numpy(), rtol=1e-5, atol=1e-5)
            assert np.any(gradient)


@pytest.mark.parametrize("stride", [1, 2])
def test_a_convolution_in_a_skipped_block_keeps_its_output_shape(stride):
    """TF 2.21's oneDNN Conv2D returns an empty batch unchanged (AVX-512 CPUs): a skipped
    ResNet block's BN then sliced 168 channels out of 88."""
    from ofa_tf.layers.conv import ElasticConv2D
    from ofa_tf.layers.skipping import residual_or_skip

    conv = ElasticConv2D(max_filters=24, kernel_size=3, strides=stride)
    conv.build((None, None, None, 16))
    shapes = []

    def branch(x):
        y = conv(x, active_filters=tf.constant(20))
        shapes.append(tf.shape(y))
        return tf.zeros_like(x)

    @tf.function
    def run(x, active):
        shapes.clear()
        out = residual_or_skip(branch, x, active)
        return out, shapes[0]

    images = tf.ones([2, 9, 9, 16])
    for active in (False, True):
        out, shape = run(images, tf.constant(active))
        assert shape.numpy().tolist() == [2 if active else 0, -(-9 // stride), -(-9 // stride), 20]
        np.testing.assert_array_equal(out.numpy(), images.numpy())


def test_hard_activations_custom_gradients_equal_the_composite():
    from ofa_tf.layers import activations

    x = tf.constant(np.concatenate([np.linspace(-5, 5, 1001), [-3.0, 3.0, 0.0, -1.5]]).astype(np.float32))
    for ours, composite in (
        (activations.hard_swish, lambda v: v * tf.nn.relu6(v + 3.0) / 6.0),
        (activations.hard_sigmoid, lambda v: tf.nn.relu6(v + 3.0) / 6.0),
    ):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            a, b = ours(x), composite(x)
        assert float(tf.reduce_max(tf.abs(a - b))) == 0.0
        assert float(tf.reduce_max(tf.abs(tape.gradient(a, x) - tape.gradient(b, x)))) <= 1e-6


def test_skipped_blocks_run_on_no_images_and_keep_their_statistics():
    net = build_tiny(seed=5)
    images = tf.constant(np.random.default_rng(4).normal(size=(4, 32, 32, 3)).astype(np.float32))
    forward = tf.function(lambda x, arch: net(x, training=True, arch=arch), autograph=False)
    arch = net.arch_tensors(net.space.normalize(ks=5, e=4, d=2))
    skipped, kept = net.blocks[3], net.blocks[1]  # depth indices 3 and 1 of stage 0
    before = {id(v): v.numpy().copy() for block in (skipped, kept) for v in block.non_trainable_variables}
    forward(images, arch)
    assert all(np.array_equal(before[id(v)], v.numpy()) for v in skipped.non_trainable_variables)
    assert not all(np.array_equal(before[id(v)], v.numpy()) for v in kept.non_trainable_variables)
    ops = {op.type for op in forward.get_concrete_function(images, arch).graph.get_operations()}
    assert not ops & {"If", "StatelessIf", "Case", "StatelessCase", "While"}  # no control flow: one flat graph
