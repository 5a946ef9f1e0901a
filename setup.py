"""ofa-tf: Once-for-All in Keras/TensorFlow with a mobile export toolchain."""

from setuptools import setup

setup(
    name="ofa-tf",
    version="0.1.0",
    description="Once-for-All (OFA) supernets in Keras/TensorFlow: train, specialize, export to TFLite, benchmark on Android",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[
        "ofa_tf",
        "ofa_tf.data",
        "ofa_tf.interop",
        "ofa_tf.layers",
        "ofa_tf.nas",
        "ofa_tf.space",
        "ofa_tf.families",
        "ofa_tf.families.mbconv",
        "ofa_tf.families.resnet",
        "ofa_tf.supernet",
        "ofa_tf.cli",
        "ofa_tf.training",
        "ofa_tf.export",
        "ofa_tf.android_bench",
    ],
    package_dir={
        "ofa_tf": "ofa_tf",
        "ofa_tf.export": "export",
        "ofa_tf.android_bench": "android_bench",
    },
    package_data={"ofa_tf.data": ["cifar10_salvage.npz", "README.md"]},
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.15",
        "numpy>=1.26",
        "click>=8.1",
        "rich>=13",
        "PyYAML>=6",
        "tensorboard>=2.21",
        "matplotlib>=3.8",
        "ai-edge-litert>=2.0",
    ],
    extras_require={
        "export": ["tensorflow-model-optimization==0.8.*", "tf-keras==2.21.*"],  # QAT
        "pytorch": ["torch==2.13.0"],
        "tfds": ["tensorflow-datasets>=4.9"],
        # The oracle tests run the official OFA package (PyTorch, CPU). `ofa` imports
        # numpy, PIL and tqdm without declaring them; torch stays pinned.
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",  # the suite runs on every core, one test file per worker
            "pytest-cov>=5",  # what the default tier covers against the full suite (.ci/run)
            "tensorflow-datasets>=4.9",
            "ai-edge-litert>=2.0",
            "tensorflow-model-optimization==0.8.*",
            "tf-keras==2.21.*",
            "torch==2.13.0",
            "ofa==0.1.0.post202307202001",
            "pillow",
            "tqdm",
        ],
    },
    entry_points={"console_scripts": ["ofa-tf=ofa_tf.cli.main:main"]},
)
