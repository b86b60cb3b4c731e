// Runs an ONNX model in onnxruntime (CPU) on float32 inputs read from raw
// little-endian files, for the export parity tests of checkpoint/onnx.
//
// Usage: node run.js MODEL INPUT:N,C,H,W [INPUT:dims ...]
//
// Each INPUT is fed to the model's only input; the model's first output is
// written as raw little-endian float32 to INPUT + ".out" and its dims are
// printed, one JSON line per input: {"output": name, "dims": [...]}.
"use strict";

const fs = require("fs");
const ort = require("onnxruntime-node");

async function main(argv) {
  if (argv.length < 2) {
    throw new Error("usage: node run.js MODEL INPUT:N,C,H,W [INPUT:dims ...]");
  }
  const session = await ort.InferenceSession.create(argv[0]);
  if (session.inputNames.length !== 1) {
    throw new Error(`${argv[0]}: want one input, have ${session.inputNames}`);
  }
  for (const arg of argv.slice(1)) {
    const at = arg.lastIndexOf(":");
    if (at < 0) {
      throw new Error(`${arg}: want FILE:dims`);
    }
    const file = arg.slice(0, at);
    const dims = arg.slice(at + 1).split(",").map(Number);
    const raw = fs.readFileSync(file);
    const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    if (data.length !== dims.reduce((a, b) => a * b, 1)) {
      throw new Error(`${file}: ${data.length} values, dims ${dims}`);
    }
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, dims) };
    const results = await session.run(feeds);
    const name = session.outputNames[0];
    const out = results[name];
    fs.writeFileSync(file + ".out", Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
    console.log(JSON.stringify({ output: name, dims: out.dims }));
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err.message || err);
  process.exit(1);
});
