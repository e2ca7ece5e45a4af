//! The feature catalog: which features exist, their names, and the order of a feature row.
//! The engines in `compute/` compute rows in exactly this order.

/// One feature of a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Feature {
    /// Number of values (after cleaning and gap filling).
    Count,
    /// Arithmetic mean.
    Mean,
    /// Population standard deviation (ddof = 0), computed in two passes.
    Std,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Root mean square.
    Rms,
    /// Population skewness m3 / m2^1.5 (0 for constant windows).
    Skewness,
    /// Excess kurtosis m4 / m2^2 - 3 (0 for constant windows).
    Kurtosis,
    /// Least-squares slope of value against time, per second (0 with fewer than two times).
    Slope,
    /// max - min.
    PeakToPeak,
    /// Neighbouring pairs whose deviations from the mean have opposite signs, per pair.
    MeanCrossingRate,
    /// Power of the mean-removed window between two frequencies.
    Band {
        /// Lower edge, Hz (inclusive).
        low_hz: f64,
        /// Upper edge, Hz (exclusive).
        high_hz: f64,
    },
}

/// The scalar (non-band) features, by their names in pipeline files.
pub const SCALAR_FEATURES: &[(&str, Feature)] = &[
    ("count", Feature::Count),
    ("mean", Feature::Mean),
    ("std", Feature::Std),
    ("min", Feature::Min),
    ("max", Feature::Max),
    ("rms", Feature::Rms),
    ("skewness", Feature::Skewness),
    ("kurtosis", Feature::Kurtosis),
    ("slope", Feature::Slope),
    ("peak-to-peak", Feature::PeakToPeak),
    ("mean-crossing-rate", Feature::MeanCrossingRate),
];

/// The features a pipeline computes, in row order.
#[derive(Clone, Debug, Default)]
pub struct FeatureSet {
    /// Column names (as in outputs and rules: `peak-to-peak` becomes `peak_to_peak`).
    pub names: Vec<String>,
    /// What each column is.
    pub kinds: Vec<Feature>,
}

impl FeatureSet {
    /// Number of features in a row.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }
    /// True when no feature is computed.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
    /// Adds a feature.
    pub fn push(&mut self, name: &str, kind: Feature) {
        self.names.push(column_name(name));
        self.kinds.push(kind);
    }
    /// Index of a feature by its pipeline-file or column name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        let name = column_name(name);
        self.names.iter().position(|n| *n == name)
    }
    /// Index of the `count` feature, if computed.
    pub fn count_index(&self) -> Option<usize> {
        self.kinds.iter().position(|k| *k == Feature::Count)
    }
    /// True when some feature needs the values in time order (not just running moments).
    pub fn needs_order(&self) -> bool {
        self.kinds.iter().any(|k| {
            matches!(
                k,
                Feature::Slope | Feature::MeanCrossingRate | Feature::Band { .. }
            )
        })
    }
}

/// Output column name of a feature: kebab-case names become snake_case.
pub fn column_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Looks up a scalar feature by name.
pub fn scalar(name: &str) -> Option<Feature> {
    let n = name.replace('_', "-");
    SCALAR_FEATURES
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, f)| *f)
}
