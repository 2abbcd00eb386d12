//! TensorFlow.js weights: a `*-weights_manifest.json` (groups of `{paths, weights: [{name,
//! shape, dtype, quantization?}]}`) and the binary shards it names, concatenated in manifest
//! order. Quantized weights (`uint8`/`uint16`, affine `value = min + scale · q`) are dequantized
//! as tfjs' `io.decodeWeights` does; `float32` weights are read little-endian.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use tch::Tensor;

use super::{build_from, ImportError, Imported};
use crate::models::face_api::FaceExpressionNetConfig;
use crate::models::Architecture;

#[derive(Debug, Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    shape: Vec<i64>,
    dtype: String,
    #[serde(default)]
    quantization: Option<Quant>,
}

#[derive(Debug, Deserialize)]
struct Quant {
    dtype: String,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    min: Option<f64>,
}

/// How a stored weight becomes `f32`.
enum Decode {
    F32,
    U8 { scale: f64, min: f64 },
    U16 { scale: f64, min: f64 },
}

impl Decode {
    fn width(&self) -> usize {
        match self {
            Decode::F32 => 4,
            Decode::U8 { .. } => 1,
            Decode::U16 { .. } => 2,
        }
    }

    fn value(&self, b: &[u8]) -> f32 {
        match *self {
            Decode::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Decode::U8 { scale, min } => (min + scale * b[0] as f64) as f32,
            Decode::U16 { scale, min } => (min + scale * u16::from_le_bytes([b[0], b[1]]) as f64) as f32,
        }
    }
}

/// A decoded weight: shape (tfjs layout) and values.
#[derive(Debug, Clone)]
pub struct TfjsWeight {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// Reads every weight named by `manifest` (shards are looked up beside it).
pub fn read_weights(manifest: &Path) -> Result<HashMap<String, TfjsWeight>, ImportError> {
    let bad = |m: String| ImportError::format(manifest, m);
    let text = std::fs::read_to_string(manifest).map_err(|e| ImportError::Io { path: manifest.into(), error: e })?;
    let groups: Vec<Group> =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a tfjs weights manifest: {e}")))?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let mut out = HashMap::new();
    for g in groups {
        let mut bytes = Vec::new();
        for p in &g.paths {
            let shard = dir.join(p);
            bytes.extend(std::fs::read(&shard).map_err(|e| ImportError::Io { path: shard.clone(), error: e })?);
        }
        let mut at = 0usize;
        for w in g.weights {
            if w.shape.iter().any(|&d| d < 0) {
                return Err(bad(format!("{}: negative dimension in {:?}", w.name, w.shape)));
            }
            let n = w.shape.iter().product::<i64>() as usize;
            let dec = match (&w.quantization, w.dtype.as_str()) {
                (None, "float32") => Decode::F32,
                (Some(q), "float32") if q.dtype == "uint8" || q.dtype == "uint16" => {
                    let (scale, min) = match (q.scale, q.min) {
                        (Some(s), Some(m)) => (s, m),
                        _ => return Err(bad(format!("{}: {} quantization without scale and min", w.name, q.dtype))),
                    };
                    if q.dtype == "uint8" {
                        Decode::U8 { scale, min }
                    } else {
                        Decode::U16 { scale, min }
                    }
                }
                (q, dtype) => {
                    return Err(bad(format!(
                        "{}: dtype {dtype} with quantization {:?} is not supported",
                        w.name,
                        q.as_ref().map(|q| &q.dtype)
                    )))
                }
            };
            let width = dec.width();
            let end = at + n * width;
            if end > bytes.len() {
                return Err(bad(format!(
                    "{}: needs bytes {at}..{end} but the shards {:?} hold {} (truncated?)",
                    w.name,
                    g.paths,
                    bytes.len()
                )));
            }
            let data = bytes[at..end].chunks_exact(width).map(|c| dec.value(c)).collect();
            at = end;
            out.insert(w.name, TfjsWeight { shape: w.shape, data });
        }
        if at != bytes.len() {
            return Err(bad(format!("shards {:?} hold {} bytes, the manifest describes {at}", g.paths, bytes.len())));
        }
    }
    Ok(out)
}

fn take(w: &mut HashMap<String, TfjsWeight>, path: &Path, name: &str) -> Result<Tensor, ImportError> {
    let t = w.remove(name).ok_or_else(|| ImportError::format(path, format!("no weight `{name}`")))?;
    Ok(Tensor::from_slice(&t.data).view(t.shape.as_slice()))
}

/// Imports face-api.js's `face_expression_model` into
/// [`crate::models::face_api::FaceExpressionNet`].
pub fn face_expression_net(manifest: &Path) -> Result<Imported, ImportError> {
    let mut w = read_weights(manifest)?;
    let w = &mut w;
    let mut tensors = HashMap::new();
    let mut widths = Vec::new();
    // (kh, kw, in, out) → (out, in, kh, kw); depthwise (kh, kw, in, 1) → (in, 1, kh, kw).
    let first = take(w, manifest, "dense0/conv0/filters")?;
    let in_channels = first.size()[2];
    tensors.insert("dense0.conv0.weight".to_string(), first.permute([3, 2, 0, 1]).contiguous());
    tensors.insert("dense0.conv0.bias".to_string(), take(w, manifest, "dense0/conv0/bias")?);
    let mut b = 0;
    while w.contains_key(&format!("dense{b}/conv1/pointwise_filter")) {
        for i in usize::from(b == 0)..4 {
            let (src, ours) = (format!("dense{b}/conv{i}"), format!("dense{b}.conv{i}"));
            let dw = take(w, manifest, &format!("{src}/depthwise_filter"))?;
            tensors.insert(format!("{ours}.dw.weight"), dw.permute([2, 3, 0, 1]).contiguous());
            let pw = take(w, manifest, &format!("{src}/pointwise_filter"))?;
            if i == 1 {
                widths.push(pw.size()[3]);
            }
            tensors.insert(format!("{ours}.pw.weight"), pw.permute([3, 2, 0, 1]).contiguous());
            tensors.insert(format!("{ours}.pw.bias"), take(w, manifest, &format!("{src}/bias"))?);
        }
        b += 1;
    }
    let fc = take(w, manifest, "fc/weights")?;
    let classes = fc.size()[1];
    tensors.insert("fc.weight".into(), fc.transpose(0, 1).contiguous());
    tensors.insert("fc.bias".into(), take(w, manifest, "fc/bias")?);
    if !w.is_empty() {
        let mut left: Vec<_> = w.keys().cloned().collect();
        left.sort();
        return Err(ImportError::format(
            manifest,
            format!("weights not used by FaceExpressionNet: {}", left.join(", ")),
        ));
    }
    let cfg = FaceExpressionNetConfig { in_channels, classes, widths };
    build_from(manifest, Architecture::FaceExpressionNet(cfg), [in_channels as usize, 112, 112], tensors)
}
