# Example 1 of "Can TensorFlow run on a 32-bit Raspbian OS?": a tiny Keras
# model trained for one epoch. Unchanged in meaning; the harness adds phase
# markers ("@@hil phase <name>") and reports the loss ("@@hil value ...").
# The data's rows and the hidden layer's width are suite parameters
# (samples, units); their defaults, 10 and 10, are the article's.
import json
import os


def hil(kind, *words):
    print("@@hil", kind, *words, flush=True)


def param(name, default):
    """A suite parameter: pi-hil sets HIL_PARAM_<NAME> from suite.yaml's params:
    (the value given, else its default); `default` only serves a run by hand."""
    return type(default)(os.environ.get("HIL_PARAM_" + name.upper(), default))


SAMPLES = param("samples", 10)
UNITS = param("units", 10)


hil("phase", "import")
import tensorflow as tf

hil("value", "tf_version", json.dumps(tf.__version__))

hil("phase", "build")
# Define a very simple model
model = tf.keras.Sequential([
  tf.keras.layers.Dense(UNITS, activation='relu', input_shape=(100,)),
  tf.keras.layers.Dense(1)
])

hil("phase", "compile")
# Compile the model (This might fail due to memory constraints)
model.compile(optimizer='adam', loss='mse')

# Generate some tiny sample data (crucial for even this minimal example to have a chance)
x_train = tf.random.normal((SAMPLES, 100))
y_train = tf.random.normal((SAMPLES, 1))

hil("phase", "fit")
# Attempt to train the model (highly probable to fail)
history = model.fit(x_train, y_train, epochs=1)

hil("value", "loss", json.dumps(float(history.history["loss"][-1])))
