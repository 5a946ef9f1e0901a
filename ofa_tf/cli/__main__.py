"""`python -m ofa_tf.cli`: the ofa-tf command."""

from ofa_tf.cli.main import main

main()
