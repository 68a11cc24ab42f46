import t from 'tap';
import { spawnSync } from 'node:child_process';
import { DEBIAN_PYTHON, tfPython } from './helpers/tf-venv.ts';

/**
 * Loads suites/tflite-inference/model.tflite with a real TFLite parser and
 * compares its output, on a few seeded inputs, with a NumPy forward pass of
 * the weights in model-weights.json. Prints {"max_abs_diff", "shape"}.
 */
const COMPARE = `
import json, sys
import numpy as np
kind, model, weights = sys.argv[1:4]
w = json.load(open(weights))
w1, b1, w2, b2 = (np.array(w[k], dtype=np.float32) for k in ("w1", "b1", "w2", "b2"))
xs = np.random.RandomState(7).standard_normal((5, 1, 100)).astype(np.float32)

if kind == "pyarmnn":
    import pyarmnn as ann
    parser = ann.ITfLiteParser()
    network = parser.CreateNetworkFromBinaryFile(model)
    inp = parser.GetNetworkInputBindingInfo(0, parser.GetSubgraphInputTensorNames(0)[0])
    out = parser.GetNetworkOutputBindingInfo(0, parser.GetSubgraphOutputTensorNames(0)[0])
    runtime = ann.IRuntime(ann.CreationOptions())
    opt, _ = ann.Optimize(network, [ann.BackendId("CpuRef")], runtime.GetDeviceSpec(), ann.OptimizerOptions())
    net_id, _ = runtime.LoadNetwork(opt)
    def run(x):
        outputs = ann.make_output_tensors([out])
        runtime.EnqueueWorkload(net_id, ann.make_input_tensors([inp], [x]), outputs)
        return ann.workload_tensors_to_ndarray(outputs)[0]
else:
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_path=model)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    def run(x):
        interp.set_tensor(i, x)
        interp.invoke()
        return interp.get_tensor(o)

diff, shape = 0.0, None
for x in xs:
    y = np.asarray(run(x))
    ref = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    shape = list(y.shape)
    diff = max(diff, float(np.max(np.abs(y - ref))))
print(json.dumps({"max_abs_diff": diff, "shape": shape}))
`;

const MODEL = 'suites/tflite-inference/model.tflite';
const WEIGHTS = 'suites/tflite-inference/model-weights.json';

function compare(python: string, kind: 'pyarmnn' | 'tf.lite'): { max_abs_diff: number; shape: number[] } {
  const r = spawnSync(python, ['-c', COMPARE, kind, MODEL, WEIGHTS], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${kind} via ${python} failed (exit ${r.status}, ${r.signal ?? 'no signal'}):\n${r.stderr.slice(-3000)}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as { max_abs_diff: number; shape: number[] };
}

t.test("Arm NN's TFLite parser (Debian's pyarmnn) agrees with NumPy within 1e-5", async (t) => {
  const r = compare(DEBIAN_PYTHON, 'pyarmnn');
  t.same(r.shape, [1, 1]);
  t.ok(r.max_abs_diff <= 1e-5, `max |armnn - numpy| = ${r.max_abs_diff}`);
});

t.test('tf.lite in the TensorFlow venv agrees with NumPy within 1e-5', async (t) => {
  const r = compare(tfPython(), 'tf.lite');
  t.same(r.shape, [1, 1]);
  t.ok(r.max_abs_diff <= 1e-5, `max |tf.lite - numpy| = ${r.max_abs_diff}`);
});

t.test('the shipped model is exactly what the generator makes now', async (t) => {
  // The generator converts afresh and compares bytes: this holds only if the
  // conversion is deterministic and the committed files are up to date.
  const r = spawnSync(tfPython(), ['scripts/make-tflite-model.py', '--check'], { encoding: 'utf8', timeout: 300_000 });
  t.equal(r.status, 0, r.stderr.split('\n').filter((l) => /differs|Error/.test(l)).join('\n') || 'generator --check');
});
