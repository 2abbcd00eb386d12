//! fer-core preprocessing against the independent Pillow/NumPy reference
//! (`scripts/preprocess_reference.py`, goldens in `core/tests/golden/preprocess/`).

use std::path::PathBuf;

use fer_core::preprocess::{crop_rect, FaceBox, InputSpec};
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    image: String,
    #[serde(rename = "box")]
    face: Option<FaceBox>,
    crop: [u32; 4],
    spec: InputSpec,
    shape: [usize; 4],
    expected: Vec<f32>,
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/preprocess")
}

#[test]
fn preprocessing_matches_pillow_reference() {
    let text = std::fs::read_to_string(golden_dir().join("cases.json")).unwrap();
    let doc: Doc = serde_json::from_str(&text).unwrap();
    assert!(doc.cases.len() >= 6);
    for case in &doc.cases {
        let img = image::open(golden_dir().join(&case.image)).unwrap();
        if let Some(face) = case.face {
            let r = crop_rect(img.width(), img.height(), face, case.spec.face_margin).unwrap();
            assert_eq!([r.x0, r.y0, r.x1, r.y1], case.crop, "{}: crop rectangle", case.name);
        }
        let t = match case.face {
            Some(face) => case.spec.preprocess_batch(&img, &[face]).unwrap(),
            None => case.spec.preprocess_image(&img).unwrap(),
        };
        assert_eq!(t.shape, case.shape, "{}: shape", case.name);
        let (worst_i, worst) = t
            .data
            .iter()
            .zip(&case.expected)
            .map(|(a, b)| (a - b).abs())
            .enumerate()
            .fold((0, 0.0f32), |acc, (i, d)| if d > acc.1 { (i, d) } else { acc });
        assert!(
            worst <= 1e-4,
            "{}: max abs diff {worst} at flat index {worst_i} (got {}, Pillow {})",
            case.name,
            t.data[worst_i],
            case.expected[worst_i]
        );
    }
}
