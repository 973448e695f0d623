//! Detection quality: AUC (the probability that a random anomaly outscores a
//! random normal event, ties counting half), and precision, recall and F1 at a
//! threshold, or at the best threshold in hindsight.

/// Precision, recall and F1 of `flagged` against `labels`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quality {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

pub fn quality(flagged: &[bool], labels: &[bool]) -> Quality {
    let tp = flagged.iter().zip(labels).filter(|(f, l)| **f && **l).count() as f64;
    let fp = flagged.iter().zip(labels).filter(|(f, l)| **f && !**l).count() as f64;
    let positives = labels.iter().filter(|l| **l).count() as f64;
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if positives > 0.0 { tp / positives } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    Quality { precision, recall, f1 }
}

/// Mann–Whitney AUC of `scores` for `labels`.
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = rank;
        }
        i = j + 1;
    }
    let positives = labels.iter().filter(|l| **l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks.iter().zip(labels).filter(|(_, l)| **l).map(|(r, _)| r).sum();
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// The best F1 over all thresholds `score >= t`, and that threshold.
pub fn best_f1(scores: &[f64], labels: &[bool]) -> (Quality, f64) {
    let mut thresholds: Vec<f64> = scores.to_vec();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let mut best = (Quality::default(), f64::NAN);
    for t in thresholds {
        let flagged: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
        let q = quality(&flagged, labels);
        if q.f1 > best.0.f1 {
            best = (q, t);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted() {
        let labels = [false, false, true, true];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &labels), 0.5);
    }
}
