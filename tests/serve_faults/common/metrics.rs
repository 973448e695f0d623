//! `/metrics` (the Prometheus text format) read into a map from the sample's
//! name and labels, exactly as printed (`betrace_reloads_total{result="ok"}`),
//! to its value.

use std::collections::HashMap;

/// The samples of one scrape.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    samples: HashMap<String, f64>,
}

impl Metrics {
    /// Reads the text format; comment lines and lines that are not a sample are skipped.
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (key, value) = line.rsplit_once(' ')?;
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect();
        Metrics { samples }
    }

    /// One sample, by name and labels as printed; 0 when absent (a labelled
    /// counter appears only once it was first counted).
    pub fn get(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }

    /// The sum over every label set of the metric `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples.iter().filter(|(key, _)| key.split('{').next() == Some(name)).map(|(_, value)| value).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_by_name_and_labels_and_summed_by_name() {
        let text = "# HELP betrace_x x\n# TYPE betrace_x counter\nbetrace_x_total{receiver=\"grpc\"} 3\n\
                    betrace_x_total{receiver=\"http\"} 4\nbetrace_bytes_held 12\n# EOF\n";
        let metrics = Metrics::parse(text);
        assert_eq!(metrics.get("betrace_x_total{receiver=\"grpc\"}"), 3.0);
        assert_eq!(metrics.get("betrace_bytes_held"), 12.0);
        assert_eq!(metrics.get("betrace_missing"), 0.0);
        assert_eq!(metrics.sum("betrace_x_total"), 7.0);
    }
}
