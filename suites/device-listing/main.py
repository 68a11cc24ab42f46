# Example 2 of "Can TensorFlow run on a 32-bit Raspbian OS?": the TF version
# and the numbers of GPUs and CPUs. Unchanged in meaning; the harness adds
# phase markers and reports the three numbers as values.
import json


def hil(kind, *words):
    print("@@hil", kind, *words, flush=True)


hil("phase", "import")
import tensorflow as tf

hil("phase", "list")
gpus = len(tf.config.list_physical_devices('GPU'))
cpus = len(tf.config.list_physical_devices('CPU'))

print("TensorFlow version:", tf.__version__)
print("Num GPUs Available: ", gpus)
print("Num CPUs Available: ", cpus)

hil("value", "tf_version", json.dumps(tf.__version__))
hil("value", "gpus", json.dumps(gpus))
hil("value", "cpus", json.dumps(cpus))
