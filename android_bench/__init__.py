"""On-device and host latency benchmarking (installed as `ofa_tf.android_bench`)."""
