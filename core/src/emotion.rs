//! The seven emotions, their canonical (FER-2013) order, and mappings from other datasets' and
//! models' label sets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the seven basic emotions. The discriminant is the FER-2013 class index, which is the
/// canonical order everywhere in fer-edge (datasets, manifests, metrics, outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    Angry = 0,
    Disgust = 1,
    Fear = 2,
    Happy = 3,
    Sad = 4,
    Surprise = 5,
    Neutral = 6,
}

/// Number of emotions.
pub const NUM_EMOTIONS: usize = 7;

/// Error for a label that names no emotion, or an index out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("unknown emotion label {0:?} (expected one of angry, disgust, fear, happy, sad, surprise, neutral or a synonym)")]
    Unknown(String),
    #[error("emotion index {index} out of range for {scheme} (0..{len})")]
    IndexOutOfRange { scheme: &'static str, index: i64, len: usize },
}

impl Emotion {
    /// All emotions in canonical (FER-2013) order.
    pub const ALL: [Emotion; NUM_EMOTIONS] = [
        Emotion::Angry,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Sad,
        Emotion::Surprise,
        Emotion::Neutral,
    ];

    /// Canonical index (FER-2013 class id).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Canonical lowercase name, as written in manifests and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Angry => "angry",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Sad => "sad",
            Emotion::Surprise => "surprise",
            Emotion::Neutral => "neutral",
        }
    }

    /// From a FER-2013 class id (`emotion` column of fer2013.csv).
    pub fn from_index(index: i64) -> Result<Emotion, LabelError> {
        usize::try_from(index).ok().and_then(|i| Emotion::ALL.get(i).copied()).ok_or(LabelError::IndexOutOfRange {
            scheme: "FER-2013",
            index,
            len: NUM_EMOTIONS,
        })
    }

    /// Parses a label name, case-insensitively, accepting the canonical names and the synonyms used
    /// by FER-2013 folders, CK+ folders and face-api (`anger`, `disgusted`, `fearful`, `happiness`,
    /// `sadness`, `surprised`, ...). CK+'s `contempt` is not an emotion of ours: see [`CkLabel`].
    pub fn from_name(name: &str) -> Result<Emotion, LabelError> {
        let lower = name.trim().to_ascii_lowercase();
        let e = match lower.as_str() {
            "angry" | "anger" => Emotion::Angry,
            "disgust" | "disgusted" => Emotion::Disgust,
            "fear" | "fearful" | "afraid" => Emotion::Fear,
            "happy" | "happiness" | "joy" => Emotion::Happy,
            "sad" | "sadness" => Emotion::Sad,
            "surprise" | "surprised" => Emotion::Surprise,
            "neutral" => Emotion::Neutral,
            _ => return Err(LabelError::Unknown(name.to_string())),
        };
        Ok(e)
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Emotion {
    type Err = LabelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Emotion::from_name(s)
    }
}

/// A CK+ (Extended Cohn-Kanade) label: the seven FER emotions' CK+ names plus `contempt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CkLabel {
    Emotion(Emotion),
    Contempt,
}

/// What to do with CK+'s `contempt` class, which FER-2013 does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContemptPolicy {
    /// Leave contempt samples out (the common choice in the FER literature; default).
    #[default]
    Drop,
    /// Count contempt as disgust (the closest FER-2013 class by facial action units).
    AsDisgust,
    /// Count contempt as neutral.
    AsNeutral,
}

impl CkLabel {
    /// Parses a CK+ folder name (`anger`, `contempt`, `disgust`, `fear`, `happy`, `sadness`,
    /// `surprise`, `neutral`), case-insensitively; FER-style synonyms are accepted too.
    pub fn from_folder(name: &str) -> Result<CkLabel, LabelError> {
        if name.trim().eq_ignore_ascii_case("contempt") {
            return Ok(CkLabel::Contempt);
        }
        Emotion::from_name(name).map(CkLabel::Emotion)
    }

    /// From the numeric code in CK+'s `Emotion/*_emotion.txt` files:
    /// 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise.
    pub fn from_code(code: i64) -> Result<CkLabel, LabelError> {
        Ok(match code {
            0 => CkLabel::Emotion(Emotion::Neutral),
            1 => CkLabel::Emotion(Emotion::Angry),
            2 => CkLabel::Contempt,
            3 => CkLabel::Emotion(Emotion::Disgust),
            4 => CkLabel::Emotion(Emotion::Fear),
            5 => CkLabel::Emotion(Emotion::Happy),
            6 => CkLabel::Emotion(Emotion::Sad),
            7 => CkLabel::Emotion(Emotion::Surprise),
            _ => return Err(LabelError::IndexOutOfRange { scheme: "CK+", index: code, len: 8 }),
        })
    }

    /// Maps to a FER emotion under `policy`; `None` means the sample is dropped.
    pub fn to_emotion(self, policy: ContemptPolicy) -> Option<Emotion> {
        match (self, policy) {
            (CkLabel::Emotion(e), _) => Some(e),
            (CkLabel::Contempt, ContemptPolicy::Drop) => None,
            (CkLabel::Contempt, ContemptPolicy::AsDisgust) => Some(Emotion::Disgust),
            (CkLabel::Contempt, ContemptPolicy::AsNeutral) => Some(Emotion::Neutral),
        }
    }
}

/// Label orders used by models and datasets other than FER-2013.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOrder {
    /// angry, disgust, fear, happy, sad, surprise, neutral (canonical).
    Fer2013,
    /// face-api.js expression net: neutral, happy, sad, angry, fearful, disgusted, surprised.
    FaceApi,
}

impl LabelOrder {
    /// The emotions in this order's output positions.
    pub fn emotions(self) -> [Emotion; NUM_EMOTIONS] {
        use Emotion::*;
        match self {
            LabelOrder::Fer2013 => Emotion::ALL,
            LabelOrder::FaceApi => [Neutral, Happy, Sad, Angry, Fear, Disgust, Surprise],
        }
    }
}

/// Reorders per-class scores given in `labels` order into canonical order. Classes missing from
/// `labels` get 0. `scores.len()` must equal `labels.len()`.
pub fn to_canonical(labels: &[Emotion], scores: &[f32]) -> [f32; NUM_EMOTIONS] {
    debug_assert_eq!(labels.len(), scores.len());
    let mut out = [0.0; NUM_EMOTIONS];
    for (e, s) in labels.iter().zip(scores) {
        out[e.index()] = *s;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_is_fer2013() {
        let names: Vec<_> = Emotion::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names, ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]);
        for (i, e) in Emotion::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Emotion::from_index(i as i64).unwrap(), *e);
        }
        assert!(Emotion::from_index(7).is_err());
        assert!(Emotion::from_index(-1).is_err());
    }

    #[test]
    fn names_and_synonyms_parse_case_insensitively() {
        assert_eq!("Anger".parse::<Emotion>().unwrap(), Emotion::Angry);
        assert_eq!("SADNESS".parse::<Emotion>().unwrap(), Emotion::Sad);
        assert_eq!("fearful".parse::<Emotion>().unwrap(), Emotion::Fear);
        assert_eq!(" surprised ".parse::<Emotion>().unwrap(), Emotion::Surprise);
        let err = "bored".parse::<Emotion>().unwrap_err();
        assert!(err.to_string().contains("\"bored\""), "{err}");
        assert!("contempt".parse::<Emotion>().is_err());
    }

    #[test]
    fn ck_folders_codes_and_contempt_policy() {
        let folders = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise", "neutral"];
        let parsed: Vec<_> = folders.iter().map(|f| CkLabel::from_folder(f).unwrap()).collect();
        assert_eq!(parsed[0], CkLabel::Emotion(Emotion::Angry));
        assert_eq!(parsed[1], CkLabel::Contempt);
        assert_eq!(parsed[5], CkLabel::Emotion(Emotion::Sad));
        assert_eq!(CkLabel::from_code(2).unwrap(), CkLabel::Contempt);
        assert_eq!(CkLabel::from_code(0).unwrap(), CkLabel::Emotion(Emotion::Neutral));
        assert_eq!(CkLabel::from_code(7).unwrap(), CkLabel::Emotion(Emotion::Surprise));
        assert!(CkLabel::from_code(8).is_err());
        assert_eq!(CkLabel::Contempt.to_emotion(ContemptPolicy::Drop), None);
        assert_eq!(CkLabel::Contempt.to_emotion(ContemptPolicy::AsDisgust), Some(Emotion::Disgust));
        assert_eq!(CkLabel::Contempt.to_emotion(ContemptPolicy::AsNeutral), Some(Emotion::Neutral));
        assert_eq!(parsed[2].to_emotion(ContemptPolicy::Drop), Some(Emotion::Disgust));
    }

    #[test]
    fn face_api_scores_reorder_to_canonical() {
        // face-api output positions: neutral, happy, sad, angry, fearful, disgusted, surprised
        let scores = [0.10, 0.50, 0.05, 0.15, 0.04, 0.06, 0.10];
        let c = to_canonical(&LabelOrder::FaceApi.emotions(), &scores);
        assert_eq!(c, [0.15, 0.06, 0.04, 0.50, 0.05, 0.10, 0.10]);
        assert_eq!(to_canonical(&LabelOrder::Fer2013.emotions(), &scores), scores);
    }
}
