// Reference outputs of face-api.js's FaceExpressionNet, run by face-api.js 1.7.15 itself on
// TensorFlow.js 4.22.0's CPU backend (installed by scripts/node-ref.sh into .cache/node-ref), for
// fer-trainer's face-api import parity test.
//
// usage: node faceapi_reference.cjs WEIGHTS_MANIFEST.json IN.f32 N OUT.json
//
// IN.f32 holds N RGB face images, 112x112, NHWC, float32 little-endian, pixel values 0..255
// (face-api normalises them itself). OUT.json gets {"logits": [[7]...], "probs": [[7]...]} in
// face-api's output order (neutral, happy, sad, angry, fearful, disgusted, surprised).
const path = require('path');
const fs = require('fs');
const root = path.resolve(__dirname, '..', '.cache', 'node-ref', 'node_modules');
const faceapi = require(path.join(root, '@vladmandic', 'face-api', 'dist', 'face-api.node-wasm.js'));
const tf = faceapi.tf;

async function main() {
  const [manifestPath, inPath, nArg, outPath] = process.argv.slice(2);
  await tf.setBackend('cpu');
  await tf.ready();
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const shards = manifest[0].paths.map((p) => fs.readFileSync(path.join(path.dirname(manifestPath), p)));
  const buf = Buffer.concat(shards);
  const weights = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), manifest[0].weights);
  const net = new faceapi.FaceExpressionNet();
  net.loadFromWeightMap(weights);
  const n = Number(nArg);
  const raw = fs.readFileSync(inPath);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (data.length !== n * 112 * 112 * 3) throw new Error(`${inPath}: ${data.length} floats, expected ${n} x 112 x 112 x 3`);
  const faces = [];
  for (let i = 0; i < n; i++) faces.push(tf.tensor3d(data.subarray(i * 37632, (i + 1) * 37632), [112, 112, 3]));
  const input = new faceapi.NetInput(faces);
  const logits = net.runNet(input);
  const probs = net.forwardInput(input);
  fs.writeFileSync(outPath, JSON.stringify({ logits: logits.arraySync(), probs: probs.arraySync() }));
  console.log(`face-api ${faceapi.version} on tfjs ${tf.version_core} (${tf.getBackend()}): ${n} faces -> ${outPath}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
