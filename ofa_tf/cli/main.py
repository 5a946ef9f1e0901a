"""The `ofa-tf` command line. Thin: parse, call the library, print.

Bad input ends with a one-line message naming the problem and the fix, and
exit code 2 (no traceback).
"""

from __future__ import annotations

import click

from ofa_tf.cli.bench import bench
from ofa_tf.cli.common import ErrorGroup
from ofa_tf.cli.elastic import supernet
from ofa_tf.cli.export import export
from ofa_tf.cli.nas import predictor, specialize
from ofa_tf.cli.supernet import convert_official, finetune, info, train


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ofa-tf")
@click.option("--debug", is_flag=True, help="Show the traceback of input errors too.")
def main(debug: bool):
    """Once-for-All in Keras/TensorFlow: train one supernet, specialize it for any budget, ship TFLite.

    \b
    Example:
      ofa-tf info --width-mult 1.2 --resolution 224
    """


for command in (info, convert_official, supernet, train, finetune, predictor, specialize, export, bench):
    main.add_command(command)

if __name__ == "__main__":
    main()
