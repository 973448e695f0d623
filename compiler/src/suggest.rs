//! "Did you mean …?": the closest candidate within a small edit distance.

/// Edit distance between two strings (insertions, deletions, substitutions and
/// adjacent transpositions), counting characters.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous2: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(previous2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut previous2, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `name`, if one is close enough to be a likely typo:
/// within a third of the name's length (at least 1, at most 3), or differing
/// only in case.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .map(|candidate| {
            let d = if candidate.to_lowercase() == lower { 0 } else { distance(name, candidate) };
            (d, candidate)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, candidate)| (*d, *candidate))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(distance("duration", "duraiton"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(closest("duraton", ["duration", "name"]), Some("duration"));
        assert_eq!(closest("statusmessage", ["statusMessage"]), Some("statusMessage"));
        assert_eq!(closest("xyz", ["duration"]), None);
    }
}
