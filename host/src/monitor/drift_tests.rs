//! The drift judge on simulated traffic, end to end from step results: seeded draws become
//! profile counts exactly as the journal keeps them (`profile::observe`, encoded and folded),
//! in hourly windows on a simulated clock, and the step's verdict is read as `weir monitor`
//! reads it.

use serde_json::json;

use super::drift::{Settings, Status};
use super::profile::{self, Observation, Origin};
use super::status;
use crate::store::profiles::{Pending, encode, merged};
use crate::store::{AttemptOutcome, BaselinePin, ProfileRow};

const HOUR: i64 = 3_600_000;
const ROUTES: [&str; 4] = ["billing", "technical", "shipping", "spam"];

#[derive(Clone, Copy)]
struct Traffic {
    length_scale: f64,
    /// The share of `spam`; the others share the rest as 5:3:2.
    spam: f64,
    confidence: f64,
    violations: f64,
}

const BASE: Traffic = Traffic {
    length_scale: 1.0,
    spam: 0.10,
    confidence: 0.8,
    violations: 0.01,
};

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u1, u2) = (1.0 - rng.f64(), rng.f64());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One step's simulated results and the profile rows they leave.
struct Sim {
    rng: fastrand::Rng,
    pending: Vec<Pending>,
    version: String,
}

impl Sim {
    fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            pending: Vec::new(),
            version: "1.0.0".into(),
        }
    }

    /// `n` results in the window starting at `hour` hours.
    fn window(&mut self, hour: i64, n: usize, t: Traffic) {
        for _ in 0..n {
            let length = ((5.0 + 0.6 * normal(&mut self.rng)).exp() * t.length_scale) as usize;
            let input = json!({"body": "x".repeat(length)});
            let outcome = if self.rng.f64() < t.violations {
                AttemptOutcome::Failed(json!({
                    "kind": "invalid_input",
                    "message": "input does not match the step's input schema: at /body: too long",
                }))
            } else {
                let pick = self.rng.f64();
                let rest = (1.0 - t.spam) / 10.0;
                let route = if pick < t.spam {
                    ROUTES[3]
                } else if pick < t.spam + 5.0 * rest {
                    ROUTES[0]
                } else if pick < t.spam + 8.0 * rest {
                    ROUTES[1]
                } else {
                    ROUTES[2]
                };
                let confidence = (t.confidence + 0.1 * normal(&mut self.rng)).clamp(0.0, 1.0);
                AttemptOutcome::Succeeded {
                    output: json!({"label": route}),
                    confidence: Some(confidence),
                    route: Some(route.into()),
                }
            };
            let origin = Origin {
                workflow: "triage",
                version: &self.version,
                step_id: "classify",
                at_ms: hour * HOUR + 1,
                window_ms: HOUR,
            };
            let seen = Observation {
                input: Some(&input),
                outcome: &outcome,
                attempt: 1,
                latency_us: 0,
                model: None,
            };
            let profile = profile::observe(origin, &seen);
            self.pending.push(Pending {
                workflow: profile.workflow.clone(),
                version: profile.version.clone(),
                step_id: profile.step_id.clone(),
                window_ms: profile.window_ms,
                counts: encode(&profile),
            });
        }
    }

    /// A baseline of 1,000 results in hours 0–3.
    fn baseline(&mut self) {
        for hour in 0..4 {
            self.window(hour, 250, BASE);
        }
    }

    fn rows(&self) -> Vec<ProfileRow> {
        merged(Vec::new(), self.pending.clone())
    }

    /// The step's verdict once `hours` hours have passed.
    fn verdict(&self, hours: i64, pins: &[BaselinePin]) -> status::StepDrift {
        status::assess(&self.rows(), pins, |_| Settings::default(), hours * HOUR)
            .pop()
            .expect("the step was judged")
    }
}

fn alert_open(verdict: &status::StepDrift, feature: &str) -> bool {
    verdict
        .judged
        .features
        .iter()
        .any(|f| f.feature == feature && f.alert)
}

/// Each shift opens its feature's alert within `windows` windows of 200 (two for all but
/// schema violations: 1% → 5% is ten violations a window against a baseline of about ten in
/// a thousand, and binomial noise keeps some windows near the old rate; `simulation.rs`
/// measured 17 of 20 baselines opening on the second window and all within six), and two
/// clean windows close it.
#[test]
fn traffic_like_the_baseline_stays_ok_and_each_shift_opens_its_alert_within_its_windows() {
    let shifts: [(&str, Traffic, Status, i64); 4] = [
        (
            profile::INPUT_BYTES,
            Traffic {
                length_scale: 1.5,
                ..BASE
            },
            Status::Warn,
            2,
        ),
        (
            profile::ROUTE,
            Traffic { spam: 0.25, ..BASE },
            Status::Alert,
            2,
        ),
        (
            profile::CONFIDENCE,
            Traffic {
                confidence: 0.7,
                ..BASE
            },
            Status::Alert,
            2,
        ),
        (
            profile::INPUT_VIOLATION,
            Traffic {
                violations: 0.05,
                ..BASE
            },
            Status::Alert,
            6,
        ),
    ];
    for (feature, traffic, status, windows) in shifts {
        let mut sim = Sim::new(7);
        sim.baseline();
        for hour in 4..10 {
            sim.window(hour, 200, BASE);
        }
        let calm = sim.verdict(10, &[]);
        assert_eq!(calm.baseline.as_ref().map(|b| b.span.n), Some(1000));
        assert_eq!(calm.judged.chunks, 6);
        assert!(
            calm.judged.features.iter().all(|f| !f.alert),
            "no alert on baseline traffic: {:?}",
            calm.judged.features
        );
        sim.window(10, 200, traffic);
        assert!(
            !alert_open(&sim.verdict(11, &[]), feature),
            "one window does not open {feature}"
        );
        let mut hour = 11;
        let shifted = loop {
            sim.window(hour, 200, traffic);
            hour += 1;
            let verdict = sim.verdict(hour, &[]);
            if alert_open(&verdict, feature) || hour - 10 >= windows {
                break verdict;
            }
        };
        assert!(
            alert_open(&shifted, feature),
            "{feature} after {} windows: {:?}",
            hour - 10,
            shifted.judged.features
        );
        assert_eq!(shifted.judged.status, status, "{feature}");
        // Two clean windows close it again.
        sim.window(hour, 200, BASE);
        sim.window(hour + 1, 200, BASE);
        assert!(
            !alert_open(&sim.verdict(hour + 2, &[]), feature),
            "{feature} closes"
        );
    }
}

#[test]
fn small_windows_merge_until_they_hold_enough_and_the_open_window_waits() {
    let mut sim = Sim::new(3);
    sim.baseline();
    for hour in 4..9 {
        sim.window(hour, 40, BASE);
    }
    // Hour 8 is still open at 8.5 h: four closed windows of 40 make one chunk of 120 and 40
    // waiting, and the open window's 40 wait too.
    let verdict = sim.verdict(8, &[]);
    assert_eq!(verdict.judged.chunks, 1);
    assert_eq!(verdict.judged.latest.map(|s| s.n), Some(120));
    assert_eq!(verdict.judged.pending, 40 + 40);
    assert_ne!(verdict.judged.status, Status::Insufficient);

    let mut young = Sim::new(3);
    young.window(0, 500, BASE);
    let verdict = young.verdict(2, &[]);
    assert!(
        verdict.baseline.is_none(),
        "500 results are not a baseline yet"
    );
    assert_eq!(verdict.judged.status, Status::Insufficient);
    assert_eq!(verdict.judged.pending, 500);
}

#[test]
fn a_new_version_is_judged_against_the_previous_ones_baseline_and_a_pin_wins() {
    let mut sim = Sim::new(11);
    sim.baseline();
    sim.version = "1.1.0".into();
    sim.window(4, 200, Traffic { spam: 0.3, ..BASE });
    sim.window(5, 200, Traffic { spam: 0.3, ..BASE });
    let verdict = sim.verdict(6, &[]);
    assert_eq!(verdict.version, "1.1.0");
    let baseline = verdict.baseline.clone().unwrap();
    assert_eq!(
        (baseline.version.as_str(), baseline.how.as_str()),
        ("1.0.0", "previous")
    );
    assert!(
        alert_open(&verdict, profile::ROUTE),
        "{:?}",
        verdict.judged.features
    );

    // Pinning the new version's own windows as its baseline: nothing left to judge.
    let pin = BaselinePin {
        workflow: "triage".into(),
        version: "1.1.0".into(),
        from_ms: 4 * HOUR,
        to_ms: 6 * HOUR,
        source_version: "1.1.0".into(),
        pinned_by: "test".into(),
        pinned_ms: 6 * HOUR,
        reason: "the new mix is expected".into(),
    };
    let verdict = sim.verdict(6, std::slice::from_ref(&pin));
    let baseline = verdict.baseline.unwrap();
    assert_eq!((baseline.how.as_str(), baseline.span.n), ("pinned", 400));
    assert_eq!(verdict.judged.status, Status::Insufficient);
}
