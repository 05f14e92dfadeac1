//! Quality monitoring: is a step still seeing and answering what it used to?
//!
//! What each step result adds to its step's profile, counted in the journal with the result:
//! the automatic features ([`profile`]) and those a workflow declares ([`features`]). Read
//! back, a profile is summed ([`summary`]) or judged: a baseline's windows fix each feature's
//! bins ([`frozen`]), the windows since are judged against it in stretches, each feature's
//! alert opening and closing ([`drift`]), and every step of every version gets its baseline
//! and verdict ([`status`]).
//!
//! Underneath are the statistics, each a pure function of counts so that windows kept in the
//! journal (and added up across a fleet's hosts) can be judged anywhere: how a value is put
//! into frozen bins ([`bins`]), the tests and distances that compare a window with its
//! baseline ([`stats`]), where a threshold comes from when it is set by a false-alert budget
//! rather than a bare significance level ([`threshold`]), and how a window's evidence becomes
//! a verdict and an alert that opens and closes without flapping ([`verdict`]); which real
//! cases go to a person to check ([`sampling`]), and what their verdicts say about the step's
//! accuracy ([`calibration`]).
//!
//! A feature drifts only when its change is both *significant* at the sample size and
//! *material*: significance alone alerts on trivia at large n, a distance alone alerts on noise
//! at small n.
//!
//! ```
//! use weir::monitor::{bins::NumericBins, threshold::FalseAlertBudget, verdict::judge_numeric};
//!
//! let baseline: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
//! let bins = NumericBins::deciles(&baseline);
//! let base = bins.counts(baseline.iter().map(|v| Some(*v)));
//! let shifted = bins.counts((0..200).map(|i| Some(f64::from(i % 100) * 1.5)));
//! let alpha = FalseAlertBudget::default().alpha(8);
//! let score = judge_numeric(&base, &shifted, alpha);
//! assert!(score.evidence.is_drift(), "{score:?}");
//! ```

pub mod bins;
pub mod calibration;
pub mod drift;
pub mod features;
pub mod frozen;
pub mod profile;
pub mod sampling;
pub mod stats;
pub mod status;
pub mod summary;
pub mod threshold;
pub mod verdict;

#[cfg(test)]
mod drift_tests;
#[cfg(test)]
mod simulation;
