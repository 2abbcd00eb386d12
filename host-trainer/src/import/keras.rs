//! Keras 2 HDF5 models (`model.save("x.hdf5")`), read with the pure-Rust `hdf5-pure` crate: the
//! `model_config` JSON attribute gives the layer graph, `model_weights/<layer>` the tensors in the
//! order of the group's `weight_names` attribute. Kernels are converted from TensorFlow's
//! `(kh, kw, in, out)` / depthwise `(kh, kw, in, 1)` to PyTorch's `(out, in, kh, kw)`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use tch::Tensor;

use super::{build_from, ImportError, Imported};
use crate::models::mini_xception::MiniXceptionConfig;
use crate::models::Architecture;

/// An opened Keras HDF5 file.
pub struct KerasH5 {
    path: std::path::PathBuf,
    file: hdf5_pure::File,
    layers: Vec<Layer>,
    pub keras_version: String,
}

/// A weight: short name, shape, values.
pub type NamedWeight = (String, Vec<i64>, Vec<f32>);

/// One layer of the functional model's config.
#[derive(Debug, Clone)]
pub struct Layer {
    pub class: String,
    pub name: String,
    pub config: Value,
    /// Names of the layers feeding this one.
    pub inputs: Vec<String>,
}

fn attr_string(v: &hdf5_pure::AttrValue) -> Option<String> {
    use hdf5_pure::AttrValue::*;
    match v {
        String(s) | AsciiString(s) | VarLenAsciiString(s) | VarLenString(s) => Some(s.clone()),
        _ => None,
    }
}

fn attr_strings(v: &hdf5_pure::AttrValue) -> Option<Vec<String>> {
    use hdf5_pure::AttrValue::*;
    match v {
        StringArray(s) | AsciiStringArray(s) | VarLenStringArray(s) | VarLenAsciiStringArray(s) => Some(s.clone()),
        other => attr_string(other).map(|s| vec![s]),
    }
}

impl KerasH5 {
    pub fn open(path: &Path) -> Result<KerasH5, ImportError> {
        let bad = |m: String| ImportError::format(path, m);
        if !path.exists() {
            return Err(ImportError::Io { path: path.into(), error: std::io::ErrorKind::NotFound.into() });
        }
        let file = hdf5_pure::File::open(path).map_err(|e| bad(format!("not a readable HDF5 file: {e}")))?;
        let attrs = file.root().attrs().map_err(|e| bad(format!("reading root attributes: {e}")))?;
        let config = attrs
            .get("model_config")
            .and_then(attr_string)
            .ok_or_else(|| bad("no `model_config` attribute: not a Keras model file".into()))?;
        let keras_version = attrs.get("keras_version").and_then(attr_string).unwrap_or_default();
        let config: Value =
            serde_json::from_str(&config).map_err(|e| bad(format!("model_config is not valid JSON: {e}")))?;
        let list = config["config"]["layers"]
            .as_array()
            .ok_or_else(|| bad("model_config has no config.layers list (not a functional Keras model)".into()))?;
        let mut layers = Vec::new();
        for l in list {
            let name = l["config"]["name"].as_str().or(l["name"].as_str()).unwrap_or_default().to_string();
            let inputs = l["inbound_nodes"]
                .get(0)
                .and_then(Value::as_array)
                .map(|node| node.iter().filter_map(|i| i.get(0).and_then(Value::as_str).map(str::to_string)).collect())
                .unwrap_or_default();
            layers.push(Layer {
                class: l["class_name"].as_str().unwrap_or_default().to_string(),
                name,
                config: l["config"].clone(),
                inputs,
            });
        }
        Ok(KerasH5 { path: path.to_path_buf(), file, layers, keras_version })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The weights of `layer` as `(short name, shape, values)`, in `weight_names` order; the short
    /// name drops the scope and the `:0` suffix (`conv2d_1_1/kernel:0` → `kernel`).
    pub fn weights(&self, layer: &str) -> Result<Vec<NamedWeight>, ImportError> {
        let bad = |m: String| ImportError::format(&self.path, format!("layer {layer}: {m}"));
        let group_path = format!("model_weights/{layer}");
        let group = self.file.group(&group_path).map_err(|e| bad(format!("no weights group: {e}")))?;
        let attrs = group.attrs().map_err(|e| bad(format!("reading attributes: {e}")))?;
        let names = attrs.get("weight_names").and_then(attr_strings).unwrap_or_default();
        let mut out = Vec::new();
        for n in names {
            let ds = self.file.dataset(&format!("{group_path}/{n}")).map_err(|e| bad(format!("{n}: {e}")))?;
            let shape: Vec<i64> =
                ds.shape().map_err(|e| bad(format!("{n}: {e}")))?.into_iter().map(|d| d as i64).collect();
            let data = ds.read_f32().map_err(|e| bad(format!("{n}: {e}")))?;
            if data.len() as i64 != shape.iter().product::<i64>() {
                return Err(bad(format!("{n}: {} values for shape {shape:?}", data.len())));
            }
            let short = n.rsplit('/').next().unwrap_or(&n).trim_end_matches(":0").to_string();
            out.push((short, shape, data));
        }
        Ok(out)
    }

    fn weight(&self, layer: &str, short: &str) -> Result<Tensor, ImportError> {
        self.weights(layer)?
            .into_iter()
            .find(|(n, _, _)| n == short)
            .map(|(_, shape, data)| Tensor::from_slice(&data).view(shape.as_slice()))
            .ok_or_else(|| ImportError::format(&self.path, format!("layer {layer}: no `{short}` weight")))
    }
}

fn int_pair(v: &Value) -> Option<(i64, i64)> {
    Some((v.get(0)?.as_i64()?, v.get(1)?.as_i64()?))
}

/// Imports the `fer` package's mini-XCEPTION (or any model of the same topology built by the
/// authors' `mini_XCEPTION` function) into [`crate::models::mini_xception::MiniXception`].
pub fn mini_xception(path: &Path) -> Result<Imported, ImportError> {
    mini_xception_from(&KerasH5::open(path)?)
}

/// [`mini_xception`] from an opened file.
pub fn mini_xception_from(h5: &KerasH5) -> Result<Imported, ImportError> {
    let path = h5.path.as_path();
    let bad = |m: String| ImportError::format(path, m);
    let layers = h5.layers();
    let input = layers
        .iter()
        .find(|l| l.class == "InputLayer")
        .and_then(|l| l.config["batch_input_shape"].as_array().cloned())
        .ok_or_else(|| bad("no InputLayer with batch_input_shape".into()))?;
    let dim = |i: usize| input.get(i).and_then(Value::as_u64).map(|d| d as usize);
    let (h, w, c) = match (dim(1), dim(2), dim(3)) {
        (Some(h), Some(w), Some(c)) => (h, w, c),
        _ => return Err(bad(format!("input shape {input:?} is not [None, h, w, c]"))),
    };

    // Convolution-like layers in config order: stem (2 × Conv2D), per block SeparableConv2D ×2 +
    // the 1×1 shortcut Conv2D, then the head Conv2D.
    let convs: Vec<&super::keras::Layer> =
        layers.iter().filter(|l| l.class == "Conv2D" || l.class == "SeparableConv2D").collect();
    if convs.len() < 6 || !(convs.len() - 3).is_multiple_of(3) {
        return Err(bad(format!("{} convolution layers: not the mini-XCEPTION topology", convs.len())));
    }
    let n_blocks = (convs.len() - 3) / 3;
    let expect = |l: &Layer, class: &str, k: i64, stride: i64, padding: &str, bias: bool| -> Result<i64, ImportError> {
        let cfg = &l.config;
        let ok = l.class == class
            && int_pair(&cfg["kernel_size"]) == Some((k, k))
            && int_pair(&cfg["strides"]) == Some((stride, stride))
            && cfg["padding"].as_str() == Some(padding)
            && cfg["use_bias"].as_bool() == Some(bias)
            && cfg.get("depth_multiplier").and_then(Value::as_i64).unwrap_or(1) == 1;
        if !ok {
            return Err(bad(format!(
                "layer {} ({}) is not the expected {class} {k}×{k} stride {stride} padding {padding} bias {bias}",
                l.name, l.class
            )));
        }
        cfg["filters"].as_i64().ok_or_else(|| bad(format!("layer {}: no filters", l.name)))
    };
    let stem0 = expect(convs[0], "Conv2D", 3, 1, "valid", false)?;
    let stem1 = expect(convs[1], "Conv2D", 3, 1, "valid", false)?;
    if stem0 != stem1 {
        return Err(bad(format!("stem convolutions have {stem0} and {stem1} filters")));
    }
    let mut widths = Vec::new();
    for b in 0..n_blocks {
        let [s1, s2, sc] = [convs[2 + 3 * b], convs[3 + 3 * b], convs[4 + 3 * b]];
        let w = expect(s1, "SeparableConv2D", 3, 1, "same", false)?;
        if expect(s2, "SeparableConv2D", 3, 1, "same", false)? != w || expect(sc, "Conv2D", 1, 2, "same", false)? != w {
            return Err(bad(format!("block {b}: layers {}, {}, {} disagree on width", s1.name, s2.name, sc.name)));
        }
        widths.push(w);
    }
    let head = convs[convs.len() - 1];
    let classes = expect(head, "Conv2D", 3, 1, "same", true)?;
    let pools = layers.iter().filter(|l| l.class == "MaxPooling2D").count();
    let adds = layers.iter().filter(|l| l.class == "Add").count();
    if pools != n_blocks || adds != n_blocks {
        return Err(bad(format!("{pools} max-pool and {adds} add layers for {n_blocks} blocks")));
    }

    // The BatchNorm fed by each convolution (the head has none).
    let bn_of = |conv: &Layer| -> Result<&Layer, ImportError> {
        layers
            .iter()
            .find(|l| l.class == "BatchNormalization" && l.inputs.first() == Some(&conv.name))
            .ok_or_else(|| bad(format!("no BatchNormalization after layer {}", conv.name)))
    };
    let mut eps = None;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut put_bn = |prefix: &str, conv: &Layer| -> Result<(), ImportError> {
        let bn = bn_of(conv)?;
        let e = bn.config["epsilon"].as_f64().ok_or_else(|| bad(format!("layer {}: no epsilon", bn.name)))?;
        if *eps.get_or_insert(e) != e {
            return Err(bad(format!("layer {}: epsilon {e} differs from the others", bn.name)));
        }
        for (keras, ours) in
            [("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")]
        {
            tensors.insert(format!("{prefix}.{ours}"), h5.weight(&bn.name, keras)?);
        }
        Ok(())
    };
    // (kh, kw, in, out) → (out, in, kh, kw); depthwise (kh, kw, in, 1) → (in, 1, kh, kw).
    let kernel = |l: &Layer, w: &str| h5.weight(&l.name, w).map(|t| t.permute([3, 2, 0, 1]).contiguous());
    let depthwise = |l: &Layer| h5.weight(&l.name, "depthwise_kernel").map(|t| t.permute([2, 3, 0, 1]).contiguous());
    let mut convs_w: Vec<(String, Tensor)> = Vec::new();
    for (i, l) in convs[..2].iter().enumerate() {
        convs_w.push((format!("stem.{i}.conv.weight"), kernel(l, "kernel")?));
        put_bn(&format!("stem.{i}.bn"), l)?;
    }
    for b in 0..n_blocks {
        let p = format!("blocks.{b}");
        for (j, l) in [convs[2 + 3 * b], convs[3 + 3 * b]].into_iter().enumerate() {
            let s = format!("{p}.sep{}", j + 1);
            convs_w.push((format!("{s}.dw.weight"), depthwise(l)?));
            convs_w.push((format!("{s}.pw.weight"), kernel(l, "pointwise_kernel")?));
            put_bn(&format!("{s}.bn"), l)?;
        }
        let sc = convs[4 + 3 * b];
        convs_w.push((format!("{p}.shortcut.conv.weight"), kernel(sc, "kernel")?));
        put_bn(&format!("{p}.shortcut.bn"), sc)?;
    }
    convs_w.push(("head.weight".into(), kernel(head, "kernel")?));
    convs_w.push(("head.bias".into(), h5.weight(&head.name, "bias")?));
    tensors.extend(convs_w);

    let cfg = MiniXceptionConfig {
        in_channels: c as i64,
        classes,
        stem_channels: stem0,
        widths,
        bn_eps: eps.unwrap_or(1e-3),
    };
    build_from(path, Architecture::MiniXception(cfg), [c, h, w], tensors)
}
