// onnxruntime-node peer of the inference benchmark: times one model.
//
//   node bench/inference/ort_peer.js MODEL.onnx --input NAME=FILE.npy ... --threads N
//        [--warmup W] [--repeat S] [--output-dir DIR]
//   node bench/inference/ort_peer.js --version
//
// One InferenceSession (CPU, intraOpNumThreads N, interOpNumThreads 1,
// graphOptimizationLevel 'all', sequential execution); the feeds are built
// once, then W untimed and S timed session.run calls. A timed step is what a
// Node caller waits for: the run, and the outputs handed back as JS tensors.
// Prints one JSON line {"peer": "onnxruntime", "threads": N, "ms": [...]} and
// writes the last step's outputs as DIR/<name>.npy.
'use strict';
const fs = require('fs');
const path = require('path');

// dtype of a .npy descr (little-endian or byte-order-free) -> ORT type, array.
const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
  '|b1': ['bool', Uint8Array], '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array],
};

// A NumPy .npy file (format 1.0-3.0, C order) as {type, dims, data}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: malformed .npy header`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran order is not supported`);
  const kind = NPY_TYPES[descr[1]];
  if (!kind) throw new Error(`${file}: dtype ${descr[1]} is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const Array = kind[1];
  const offset = start + headerLen;
  // Copied into a fresh, aligned buffer: the file's data need not be aligned.
  const bytes = buf.buffer.slice(buf.byteOffset + offset,
                                 buf.byteOffset + offset + count * Array.BYTES_PER_ELEMENT);
  return { type: kind[0], dims, data: new Array(bytes) };
}

// Writes a float32/int64/... tensor as a version 1.0 .npy file.
function writeNpy(file, tensor) {
  const descr = Object.keys(NPY_TYPES).find((d) => NPY_TYPES[d][0] === tensor.type);
  if (!descr) throw new Error(`output type ${tensor.type} is not supported`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // total a multiple of 64
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), data]));
}

function parseArgs(argv) {
  const a = { inputs: [], threads: 1, warmup: 1, repeat: 1 };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--input') a.inputs.push(value());
    else if (arg === '--threads') a.threads = Number(value());
    else if (arg === '--warmup') a.warmup = Number(value());
    else if (arg === '--repeat') a.repeat = Number(value());
    else if (arg === '--output-dir') a.outputDir = value();
    else if (arg === '--version') a.version = true;
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else a.model = arg;
  }
  return a;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  if (a.version) {
    console.log(`onnxruntime-node ${ort.env.versions.node} (node ${process.versions.node})`);
    return;
  }
  if (!a.model) throw new Error('no model given');
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const spec of a.inputs) {
    const eq = spec.indexOf('=');
    const npy = readNpy(spec.slice(eq + 1));
    feeds[spec.slice(0, eq)] = new ort.Tensor(npy.type, npy.data, npy.dims);
  }
  const ms = [];
  let out;
  for (let i = 0; i < a.warmup + a.repeat; ++i) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    const t1 = process.hrtime.bigint();
    if (i >= a.warmup) ms.push(Number(t1 - t0) / 1e6);
  }
  if (a.outputDir) {
    fs.mkdirSync(a.outputDir, { recursive: true });
    for (const name of session.outputNames) {
      writeNpy(path.join(a.outputDir, `${name}.npy`), out[name]);
    }
  }
  console.log(JSON.stringify({ peer: 'onnxruntime', threads: a.threads, ms }));
}

main().catch((e) => {
  console.error(`ort_peer: error: ${e.message}`);
  process.exit(1);
});
