//! onnxruntime through its C API (`fer_device::onnxruntime`), the peer of `bench-models
//! --onnxruntime`: a small convolution written here as ONNX, run by the library of PyPI's wheel
//! in .venv-ref (scripts/setup.sh; or $FER_ORT_LIB), against the convolution's definition; and
//! the errors for a missing library, a file that is not one, a truncated model and wrong input.
//! The library is x86-64, so the tests that run it are too; the error tests run on every target.

use std::path::{Path, PathBuf};

use fer_device::onnxruntime::{OnnxRuntime, OrtError};

/// A file in the temporary folder, removed when dropped (at the end of the test using it).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch(name: &str) -> Scratch {
    Scratch(std::env::temp_dir().join(format!("fer-ort-test-{}-{name}", std::process::id())))
}

#[test]
fn a_missing_library_is_named_in_the_error() {
    let path = Path::new("/nonexistent/libonnxruntime.so.1");
    let e = OnnxRuntime::load(path).err().expect("a missing library loaded");
    assert!(matches!(e, OrtError::Load { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/libonnxruntime.so.1"), "{e}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let path = scratch("not-a-library.so");
    std::fs::write(&*path, b"this is text, not ELF").unwrap();
    let e = OnnxRuntime::load(&path).err().expect("a text file loaded as onnxruntime");
    assert!(matches!(e, OrtError::Load { .. }) && e.to_string().contains("not-a-library.so"), "{e}");
    // A real shared library without onnxruntime's entry point.
    let e = OnnxRuntime::load(Path::new("libm.so.6")).err().expect("libm loaded as onnxruntime");
    assert!(e.to_string().contains("libm.so.6: cannot load onnxruntime: no OrtGetApiBase"), "{e}");
}

#[cfg(target_arch = "x86_64")]
mod with_the_library {
    use super::*;
    use prost::Message;
    use tract_onnx::pb::{
        attribute_proto, tensor_proto, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto,
        NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };

    /// The library of .venv-ref's onnxruntime wheel (or $FER_ORT_LIB).
    fn library() -> PathBuf {
        if let Some(p) = std::env::var_os("FER_ORT_LIB") {
            return p.into();
        }
        let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-ref/lib");
        let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
            dirs.flatten().find_map(|d| {
                let capi = d.path().join("site-packages/onnxruntime/capi");
                std::fs::read_dir(capi).ok()?.flatten().map(|f| f.path()).find(|f| {
                    f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so.1"))
                })
            })
        });
        found.unwrap_or_else(|| panic!("no libonnxruntime.so.1* under {}: run scripts/setup.sh", lib.display()))
    }

    fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: tensor_proto::DataType::Float as i32,
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attribute_proto::AttributeType::Ints as i32,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `y = Relu(Conv(x, w, b))`: x [1, 2, 5, 6], w [3, 2, 3, 3], pads 1 above and left, 0
    /// below, 2 right, strides (1, 2); names "pixels" and "scores" (not "input"/"output", so
    /// that the names are read from the model).
    fn model(w: &[f32], b: &[f32]) -> Vec<u8> {
        let tensor = |name: &str, dims: &[i64], data: &[f32]| TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: tensor_proto::DataType::Float as i32,
            float_data: data.to_vec(),
            ..Default::default()
        };
        let conv = NodeProto {
            op_type: "Conv".into(),
            input: vec!["pixels".into(), "w".into(), "b".into()],
            output: vec!["conv".into()],
            attribute: vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 0, 2]), ints("strides", &[1, 2])],
            ..Default::default()
        };
        let relu = NodeProto {
            op_type: "Relu".into(),
            input: vec!["conv".into()],
            output: vec!["scores".into()],
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
            graph: Some(GraphProto {
                name: "test".into(),
                node: vec![conv, relu],
                initializer: vec![tensor("w", &[3, 2, 3, 3], w), tensor("b", &[3], b)],
                input: vec![value_info("pixels", &[1, 2, 5, 6])],
                output: vec![value_info("scores", &[1, 3, 4, 4])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// The same convolution by its definition, in f64.
    fn reference(x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (c, h, wd, o, oh, ow) = (2, 5, 6, 3, 4, 4);
        let mut y = Vec::new();
        for co in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = b[co] as f64;
                    for ci in 0..c {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = ((oy + ky) as i64 - 1, (ox * 2 + kx) as i64 - 1);
                                if (0..h).contains(&iy) && (0..wd).contains(&ix) {
                                    s += w[((co * c + ci) * 3 + ky) * 3 + kx] as f64
                                        * x[((ci as i64 * h + iy) * wd + ix) as usize] as f64;
                                }
                            }
                        }
                    }
                    y.push(s.max(0.0) as f32);
                }
            }
        }
        y
    }

    #[test]
    fn onnxruntime_runs_a_model_as_its_definition_says() {
        let (w, b, x) = (values(54, 1), values(3, 2), values(60, 3));
        let path = scratch("conv.onnx");
        std::fs::write(&*path, model(&w, &b)).unwrap();
        let ort = OnnxRuntime::load(&library()).unwrap();
        assert!(ort.version().starts_with(|c: char| c.is_ascii_digit()), "version {:?}", ort.version());
        let mut session = ort.session(&path, 1).unwrap();
        let want = reference(&x, &w, &b);
        assert!(want.iter().any(|&v| v > 0.1) && want.contains(&0.0), "a test that checks the ReLU both ways");
        for run in 0..2 {
            let got = session.run(&x, &[1, 2, 5, 6]).unwrap();
            assert_eq!(got.len(), want.len());
            for (i, (g, v)) in got.iter().zip(&want).enumerate() {
                assert!((g - v).abs() < 1e-5, "run {run}, element {i}: onnxruntime {g}, definition {v}");
            }
        }
    }

    #[test]
    fn bad_models_and_inputs_get_onnxruntime_s_reason_and_the_file() {
        let ort = OnnxRuntime::load(&library()).unwrap();
        let bytes = model(&values(54, 1), &values(3, 2));
        let truncated = scratch("truncated.onnx");
        std::fs::write(&*truncated, &bytes[..bytes.len() / 2]).unwrap();
        let e = ort.session(&truncated, 1).err().expect("a truncated model loaded");
        assert!(
            matches!(e, OrtError::Call { what: "CreateSession", .. }) && e.to_string().contains("truncated.onnx"),
            "{e}"
        );
        let e = ort.session(&scratch("absent.onnx"), 1).err().expect("a missing model loaded");
        assert!(e.to_string().contains("absent.onnx"), "{e}");

        let path = scratch("conv2.onnx");
        std::fs::write(&*path, &bytes).unwrap();
        let mut session = ort.session(&path, 1).unwrap();
        // Values that do not fill the shape: refused before onnxruntime sees them.
        let e = session.run(&[0.0; 59], &[1, 2, 5, 6]).unwrap_err();
        assert!(matches!(e, OrtError::Shape { len: 59, .. }), "{e}");
        // A shape the model does not take: onnxruntime's own message.
        let e = session.run(&[0.0; 70], &[1, 2, 5, 7]).unwrap_err();
        assert!(matches!(e, OrtError::Call { what: "Run", .. }) && e.to_string().contains("conv2.onnx"), "{e}");
        // The session still runs after a refused input.
        assert_eq!(session.run(&[0.0; 60], &[1, 2, 5, 6]).unwrap().len(), 48);
    }
}
