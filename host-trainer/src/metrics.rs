//! Classification metrics: confusion matrix, accuracy, per-class precision/recall/F1, macro-F1.

use fer_core::{Emotion, NUM_EMOTIONS};
use serde::{Deserialize, Serialize};

/// Confusion matrix: `counts[true][predicted]`, canonical class order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: [[u64; NUM_EMOTIONS]; NUM_EMOTIONS],
}

/// Per-class figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: Emotion,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Summary of a confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Confusion,
    pub total: u64,
}

impl Confusion {
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Accuracy, per-class precision/recall/F1 (0 where undefined) and macro-F1 over the classes
    /// that occur in the truth or the predictions.
    pub fn report(&self) -> Report {
        let total = self.total();
        let correct: u64 = (0..NUM_EMOTIONS).map(|i| self.counts[i][i]).sum();
        let mut per_class = Vec::new();
        let mut f1_sum = 0.0;
        let mut present = 0;
        for (c, label) in Emotion::ALL.iter().enumerate() {
            let tp = self.counts[c][c] as f64;
            let support: u64 = self.counts[c].iter().sum();
            let predicted: u64 = (0..NUM_EMOTIONS).map(|t| self.counts[t][c]).sum();
            let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
            let recall = if support > 0 { tp / support as f64 } else { 0.0 };
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            if support > 0 || predicted > 0 {
                f1_sum += f1;
                present += 1;
            }
            per_class.push(ClassMetrics { label: *label, precision, recall, f1, support });
        }
        Report {
            accuracy: if total > 0 { correct as f64 / total as f64 } else { 0.0 },
            macro_f1: if present > 0 { f1_sum / present as f64 } else { 0.0 },
            per_class,
            confusion: self.clone(),
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // truth angry ×4: predicted angry 3, happy 1; truth happy ×2: predicted happy 2;
        // truth sad ×2: predicted angry 1, sad 1.
        let mut c = Confusion::default();
        for (t, p) in [(0, 0), (0, 0), (0, 0), (0, 3), (3, 3), (3, 3), (4, 0), (4, 4)] {
            c.add(t, p);
        }
        let r = c.report();
        assert_eq!(r.total, 8);
        assert!((r.accuracy - 6.0 / 8.0).abs() < 1e-12);
        let angry = &r.per_class[0];
        // precision 3/4, recall 3/4, f1 3/4
        assert!((angry.precision - 0.75).abs() < 1e-12 && (angry.recall - 0.75).abs() < 1e-12);
        let happy = &r.per_class[3];
        // precision 2/3, recall 1 → f1 = 0.8
        assert!((happy.f1 - 0.8).abs() < 1e-12);
        let sad = &r.per_class[4];
        // precision 1, recall 1/2 → f1 = 2/3
        assert!((sad.f1 - 2.0 / 3.0).abs() < 1e-12);
        // macro over the three classes present
        assert!((r.macro_f1 - (0.75 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(r.per_class[1].support, 0);
    }
}
