"""What every command group shares: TensorFlow imported quietly, input errors as one line, the --arch option."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import click

from ofa_tf.space.registry import family_names


@contextlib.contextmanager
def _quiet_native_logs():
    """Silences TensorFlow's native start-up banner (written to fd 2 before logging is set up)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (e.g. embedded); nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def import_library(initialize_devices: bool = True):
    """Imports ofa_tf with TensorFlow loaded under `_quiet_native_logs`."""
    import ofa_tf

    with _quiet_native_logs():
        from ofa_tf._backend import tf

        tf.get_logger().setLevel("ERROR")  # retracing / deprecation notices are not for CLI users
        if initialize_devices:  # device set-up logs ("failed call to cuInit") land here too; a
            tf.config.list_logical_devices()  # multi-worker strategy must configure devices itself
    return ofa_tf


class ErrorGroup(click.Group):
    """Turns ofa-tf's input errors (`OFAError`) into one-line messages with exit code 2.

    Any other exception is a bug and keeps its traceback; `--debug` prints the
    traceback of input errors too, before the message, and keeps exit code 2.
    """

    def invoke(self, ctx):
        from ofa_tf.errors import OFAError

        try:
            return super().invoke(ctx)
        except OFAError as error:
            if ctx.params.get("debug"):
                click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo(f"Error: {error}", err=True)
            ctx.exit(2)


ARCH_OPTION = click.option(
    "--arch", type=click.Choice(family_names()), default=None,
    help="Supernet family: mbv3 (OFA-MobileNetV3, default), proxyless (OFA-ProxylessNAS) or resnet50 (OFA-ResNet50-D).",
)
