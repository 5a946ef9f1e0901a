"""TFLite export of extracted subnets (installed as `ofa_tf.export`)."""
