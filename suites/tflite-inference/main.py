# Example 3 of "Can TensorFlow run on a 32-bit Raspbian OS?", done right.
#
# The article's `tensorflow_lite_support.Interpreter` does not exist. The real
# interpreters are tried in order and the one that ran is reported:
#   ai_edge_litert, tflite_runtime, tf.lite (same API), then Arm NN's TFLite
#   parser (Debian's python3-pyarmnn, CpuRef backend).
# It loads model.tflite, allocates the tensors, runs one warm-up and N timed
# inferences on random input, and checks the output's shape.
# Python 3.7+, NumPy 1.x or 2.x.
import json
import os
import sys
import time

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.tflite")
EXPECTED_OUTPUT_SHAPE = (1, 1)


def hil(kind, *words):
    print("@@hil", kind, *words, flush=True)


def value(key, v):
    hil("value", key, json.dumps(v))


def param(name, default):
    """A suite parameter: pi-hil sets HIL_PARAM_<NAME> from suite.yaml's params:
    (the value given, else its default); `default` only serves a run by hand."""
    return type(default)(os.environ.get("HIL_PARAM_" + name.upper(), default))


N_INFERENCES = param("runs", 100)
# 0 leaves the thread count to the interpreter, as before the parameter existed.
THREADS = param("threads", 0)


class TfliteApi:
    """ai_edge_litert, tflite_runtime and tf.lite share one Interpreter API."""

    def __init__(self, interpreter_class):
        extra = {"num_threads": THREADS} if THREADS > 0 else {}
        self.interpreter = interpreter_class(model_path=MODEL, **extra)

    def allocate(self):
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        return tuple(self.input["shape"])

    def run(self, x):
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])


class ArmnnApi:
    """Arm NN's TFLite parser, optimised for the reference CPU backend."""

    def __init__(self, ann):
        self.ann = ann
        self.parser = ann.ITfLiteParser()
        self.network = self.parser.CreateNetworkFromBinaryFile(MODEL)

    def allocate(self):
        ann, parser = self.ann, self.parser
        self.input = parser.GetNetworkInputBindingInfo(0, parser.GetSubgraphInputTensorNames(0)[0])
        self.output = parser.GetNetworkOutputBindingInfo(0, parser.GetSubgraphOutputTensorNames(0)[0])
        self.runtime = ann.IRuntime(ann.CreationOptions())
        # CpuRef is the backend Debian ships (libarmnn-cpuref-backend); without it there is none.
        optimized, _ = ann.Optimize(self.network, [ann.BackendId("CpuRef")],
                                    self.runtime.GetDeviceSpec(), ann.OptimizerOptions())
        self.network_id, _ = self.runtime.LoadNetwork(optimized)
        shape = self.input[1].GetShape()
        return tuple(shape[i] for i in range(shape.GetNumDimensions()))

    def run(self, x):
        ann = self.ann
        inputs = ann.make_input_tensors([self.input], [x])
        outputs = ann.make_output_tensors([self.output])
        self.runtime.EnqueueWorkload(self.network_id, inputs, outputs)
        return ann.workload_tensors_to_ndarray(outputs)[0]


def litert():
    from ai_edge_litert.interpreter import Interpreter
    return TfliteApi(Interpreter)


def tflite_runtime():
    from tflite_runtime.interpreter import Interpreter
    return TfliteApi(Interpreter)


def tf_lite():
    import tensorflow as tf
    return TfliteApi(tf.lite.Interpreter)


def pyarmnn():
    import pyarmnn as ann
    return ArmnnApi(ann)


CANDIDATES = [
    ("ai_edge_litert", litert),
    ("tflite_runtime", tflite_runtime),
    ("tf.lite", tf_lite),
    ("pyarmnn", pyarmnn),
]


def open_interpreter():
    """The first interpreter that imports and loads the model; why each earlier one did not."""
    refusals = []
    for name, make in CANDIDATES:
        try:
            return name, make(), refusals
        except ImportError as e:
            refusals.append("%s: %s" % (name, e))
        except Exception as e:  # e.g. a parser that rejects the model: try the next one
            refusals.append("%s: %s: %s" % (name, type(e).__name__, e))
    raise ImportError("no TFLite interpreter could load the model: " + "; ".join(refusals))


def percentile(sorted_ms, q):
    # Nearest-rank percentile: a latency that really occurred.
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


def main():
    hil("phase", "import")
    name, api, refusals = open_interpreter()
    for r in refusals:
        print("skipped " + r, file=sys.stderr)
    value("interpreter", name)
    import numpy as np

    hil("phase", "allocate")
    input_shape = api.allocate()
    rng = np.random.RandomState(0)

    def sample():
        return rng.standard_normal(input_shape).astype(np.float32)

    hil("phase", "first_inference")
    x = sample()
    t0 = time.perf_counter()
    out = np.asarray(api.run(x))
    value("first_inference_ms", round((time.perf_counter() - t0) * 1000, 3))

    hil("phase", "invoke")
    latencies = []
    for _ in range(N_INFERENCES):
        x = sample()
        t0 = time.perf_counter()
        out = np.asarray(api.run(x))
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    value("n_inferences", N_INFERENCES)
    value("latency_mean_ms", round(sum(latencies) / len(latencies), 4))
    value("latency_p50_ms", round(percentile(latencies, 50), 4))
    value("latency_p90_ms", round(percentile(latencies, 90), 4))
    value("output_shape", list(out.shape).__repr__())

    if tuple(out.shape) != EXPECTED_OUTPUT_SHAPE or not np.all(np.isfinite(out)):
        print("bad output: shape %s (expected %s), values %r" % (out.shape, EXPECTED_OUTPUT_SHAPE, out),
              file=sys.stderr)
        return 1
    print("%s ran %d inferences, p50 %.3f ms" % (name, N_INFERENCES, percentile(latencies, 50)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
