//! Step profiles: per workflow version, step and time window, how many of the step's results
//! fell in each bin of each monitored feature (see `monitor/profile.rs` for the features and
//! their bins).
//!
//! A result's counts are journaled in the same transaction that records the result, so a
//! crash, a resume or a second host never loses or doubles one, and cheaply, whatever the
//! number of features: on PostgreSQL as one row of its own (`profile_results`); on SQLite
//! inside the result's own event (a commit there costs what it writes in pages), moved into
//! `profile_results` when the run stops (see `sqlite/profiles.rs`).
//! [`MonitorJournal::compact_profiles`] later folds those rows into the
//! counts (`step_profiles`, keyed by workflow, version, step, window, feature and bin, each
//! with the sum of its values), deleting the rows it folds in the same transaction; every
//! fold is an addition, so hosts folding at once add up. Reads see both: the counts, plus the
//! rows not folded yet.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The monitor's journal: step profiles (written with each step result, by the backends'
/// advance) and the baselines pinned over them.
#[async_trait]
pub trait MonitorJournal: Send + Sync {
    /// Profile rows, in (version, step, window, feature, bin) order: the folded counts and the
    /// results not folded yet, added up.
    async fn profiles(&self, filter: &ProfileFilter) -> anyhow::Result<Vec<ProfileRow>>;
    /// Folds up to `limit` results journaled one by one into the counts, oldest first, in one
    /// transaction; returns how many it folded (fewer than `limit`: none are left).
    async fn compact_profiles(&self, limit: usize) -> anyhow::Result<usize>;
    /// Journals a baseline pin: the latest pin of a workflow version is its baseline, and
    /// every earlier one is kept as its history.
    async fn pin_baseline(&self, pin: &BaselinePin) -> anyhow::Result<()>;
    /// Every pin of `workflow`'s versions, oldest first.
    async fn baseline_pins(&self, workflow: &str) -> anyhow::Result<Vec<BaselinePin>>;
}

/// Results folded per transaction by [`fold_all`].
pub const FOLD_BATCH: usize = 5_000;

/// Folds every pending result into the counts, [`FOLD_BATCH`] a transaction; returns how many.
pub async fn fold_all(journal: &dyn MonitorJournal) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let folded = journal.compact_profiles(FOLD_BATCH).await?;
        total += folded;
        if folded < FOLD_BATCH {
            return Ok(total);
        }
    }
}

/// A baseline pinned by hand: the windows from `from_ms` up to `to_ms` of a workflow version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaselinePin {
    /// The workflow.
    pub workflow: String,
    /// The version whose baseline this is.
    pub version: String,
    /// The windows it holds start at or after this (ms since the epoch)…
    pub from_ms: i64,
    /// …and before this.
    pub to_ms: i64,
    /// Whose windows: `version`'s own, or another version's (a baseline carried over).
    pub source_version: String,
    /// Who pinned it.
    pub pinned_by: String,
    /// When (ms since the epoch).
    pub pinned_ms: i64,
    /// Why, in the pinner's words.
    pub reason: String,
}

/// One step result's addition to its step's profile, journaled with the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepProfile {
    /// The workflow.
    pub workflow: String,
    /// Its version.
    pub version: String,
    /// The step.
    pub step_id: String,
    /// Start of the window the result falls in, ms since the epoch.
    pub window_ms: i64,
    /// What it adds, one entry per (feature, bin): [`StepProfile::add`] keeps them distinct.
    pub counts: Vec<ProfileCount>,
}

/// What a result adds to one bin of one feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileCount {
    /// The feature, e.g. `input.bytes` or `output.route`.
    pub feature: String,
    /// The bin within it.
    pub bin: String,
    /// Results counted.
    pub count: i64,
    /// The sum of their values (numeric features; 0 otherwise).
    pub sum: f64,
}

impl StepProfile {
    /// Adds `count` results with values summing to `sum` to `feature`'s `bin`.
    pub fn add(&mut self, feature: &str, bin: &str, count: i64, sum: f64) {
        match self
            .counts
            .iter_mut()
            .find(|c| c.feature == feature && c.bin == bin)
        {
            Some(existing) => {
                existing.count += count;
                existing.sum += sum;
            }
            None => self.counts.push(ProfileCount {
                feature: feature.to_string(),
                bin: bin.to_string(),
                count,
                sum,
            }),
        }
    }

    /// The entries in the order every backend writes them: a fixed order, so that two
    /// transactions adding to the same rows take their row locks in the same order and
    /// cannot deadlock each other.
    pub(crate) fn sorted(&self) -> Vec<&ProfileCount> {
        let mut counts: Vec<&ProfileCount> = self.counts.iter().collect();
        counts.sort_by(|a, b| (&a.feature, &a.bin).cmp(&(&b.feature, &b.bin)));
        counts
    }
}

/// Which profile rows to read.
#[derive(Debug, Clone, Default)]
pub struct ProfileFilter {
    /// The workflow.
    pub workflow: String,
    /// Only this version.
    pub version: Option<String>,
    /// Only this step.
    pub step_id: Option<String>,
    /// Only windows starting at or after this, ms since the epoch.
    pub since_ms: Option<i64>,
    /// Only windows starting before this.
    pub until_ms: Option<i64>,
}

/// One stored row: a bin's count in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileRow {
    /// The workflow version.
    pub version: String,
    /// The step.
    pub step_id: String,
    /// Start of the window, ms since the epoch.
    pub window_ms: i64,
    /// The feature.
    pub feature: String,
    /// The bin.
    pub bin: String,
    /// Results counted.
    pub count: i64,
    /// The sum of their values.
    pub sum: f64,
}

/// The columns every backend reads, in [`ProfileRow`]'s order.
pub(crate) const SELECT_COLUMNS: &str = "version, step_id, window_ms, feature, bin, count, sum";

/// The query of the folded counts a [`ProfileFilter`] selects, with placeholders written by
/// `param` (in the order of [`filter_values`]).
pub(crate) fn filter_sql(filter: &ProfileFilter, param: fn(usize) -> String) -> String {
    format!(
        "SELECT {SELECT_COLUMNS} FROM step_profiles WHERE {}",
        where_clause(filter, param)
    )
}

/// The query of the results not folded yet that a [`ProfileFilter`] selects: version, step,
/// window and the encoded counts (see [`encode`]).
pub(crate) fn pending_sql(filter: &ProfileFilter, param: fn(usize) -> String) -> String {
    format!(
        "SELECT version, step_id, window_ms, counts FROM profile_results WHERE {}",
        where_clause(filter, param)
    )
}

/// The conditions of a filter (1: the workflow, then one per condition set).
fn where_clause(filter: &ProfileFilter, param: fn(usize) -> String) -> String {
    let mut clauses = vec![format!("workflow = {}", param(1))];
    let mut next = 2;
    let mut push = |column: &str, op: &str, set: bool| {
        if set {
            clauses.push(format!("{column} {op} {}", param(next)));
            next += 1;
        }
    };
    push("version", "=", filter.version.is_some());
    push("step_id", "=", filter.step_id.is_some());
    push("window_ms", ">=", filter.since_ms.is_some());
    push("window_ms", "<", filter.until_ms.is_some());
    clauses.join(" AND ")
}

/// A result's counts as JSON: `{"w": window, "c": [[feature, bin], [feature, bin, sum], …]}`,
/// each entry a count of one (and its value's sum when not zero) unless it says
/// `[feature, bin, count, sum]`. Small, since it is journaled with every result. What
/// [`encode`] writes, built as a value: the reference it is checked against.
#[cfg(test)]
pub(crate) fn to_value(profile: &StepProfile) -> serde_json::Value {
    use serde_json::json;
    let entries: Vec<serde_json::Value> = profile
        .counts
        .iter()
        .map(|n| match (n.count, n.sum) {
            (1, 0.0) => json!([n.feature, n.bin]),
            (1, sum) => json!([n.feature, n.bin, sum]),
            (count, sum) => json!([n.feature, n.bin, count, sum]),
        })
        .collect();
    json!({"w": profile.window_ms, "c": entries})
}

/// The window and counts of [`encode`]'s text, parsed; `None` for anything else.
pub(crate) fn from_value(value: &serde_json::Value) -> Option<(i64, Vec<ProfileCount>)> {
    let window_ms = value.get("w")?.as_i64()?;
    let counts = value
        .get("c")?
        .as_array()?
        .iter()
        .filter_map(|entry| {
            let e = entry.as_array()?;
            let (count, sum) = match e.len() {
                2 => (1, 0.0),
                3 => (1, e[2].as_f64()?),
                4 => (e[2].as_i64()?, e[3].as_f64()?),
                _ => return None,
            };
            Some(ProfileCount {
                feature: e[0].as_str()?.to_string(),
                bin: e[1].as_str()?.to_string(),
                count,
                sum,
            })
        })
        .collect();
    Some((window_ms, counts))
}

/// A result's counts as text (`{"w": window, "c": [[feature, bin], [feature, bin, sum],
/// [feature, bin, count, sum], …]}`, an entry with no count a count of one and with no sum a
/// sum of zero), written without building a JSON value: this is written for every result.
pub(crate) fn encode(profile: &StepProfile) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(64 + 32 * profile.counts.len());
    out.extend_from_slice(format!("{{\"w\":{},\"c\":[", profile.window_ms).as_bytes());
    for (i, n) in profile.counts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        // Writing a string into a vector cannot fail.
        let _ = serde_json::to_writer(&mut out, &n.feature);
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, &n.bin);
        let sum = if n.sum.is_finite() { n.sum } else { 0.0 };
        match (n.count, sum) {
            (1, 0.0) => {}
            (1, sum) => out.extend_from_slice(format!(",{sum}").as_bytes()),
            (count, sum) => out.extend_from_slice(format!(",{count},{sum}").as_bytes()),
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    String::from_utf8(out).unwrap_or_default()
}

/// The counts [`encode`] wrote; an entry that does not parse is left out (the text is the
/// journal's own, so none should).
pub(crate) fn decode(text: &str) -> Vec<ProfileCount> {
    serde_json::from_str(text)
        .ok()
        .and_then(|v| from_value(&v))
        .map(|(_, counts)| counts)
        .unwrap_or_default()
}

/// A result journaled one by one and not folded yet: its step, window and encoded counts.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub workflow: String,
    pub version: String,
    pub step_id: String,
    pub window_ms: i64,
    pub counts: String,
}

/// Pending results added up per (workflow, version, step, window): what one fold adds.
pub(crate) fn fold(pending: &[Pending]) -> Vec<StepProfile> {
    let mut folded: std::collections::BTreeMap<(&str, &str, &str, i64), StepProfile> =
        std::collections::BTreeMap::new();
    for p in pending {
        let key = (
            p.workflow.as_str(),
            p.version.as_str(),
            p.step_id.as_str(),
            p.window_ms,
        );
        let profile = folded.entry(key).or_insert_with(|| StepProfile {
            workflow: p.workflow.clone(),
            version: p.version.clone(),
            step_id: p.step_id.clone(),
            window_ms: p.window_ms,
            counts: Vec::new(),
        });
        for n in decode(&p.counts) {
            profile.add(&n.feature, &n.bin, n.count, n.sum);
        }
    }
    folded.into_values().collect()
}

/// The folded counts and the pending results (of one workflow) added up, in
/// (version, step, window, feature, bin) order.
pub(crate) fn merged(folded: Vec<ProfileRow>, pending: Vec<Pending>) -> Vec<ProfileRow> {
    type Key = (String, String, i64, String, String);
    let mut rows: std::collections::BTreeMap<Key, (i64, f64)> = folded
        .into_iter()
        .map(|r| {
            (
                (r.version, r.step_id, r.window_ms, r.feature, r.bin),
                (r.count, r.sum),
            )
        })
        .collect();
    for profile in fold(&pending) {
        for n in profile.counts {
            let key = (
                profile.version.clone(),
                profile.step_id.clone(),
                profile.window_ms,
                n.feature,
                n.bin,
            );
            let slot = rows.entry(key).or_insert((0, 0.0));
            slot.0 += n.count;
            slot.1 += n.sum;
        }
    }
    rows.into_iter()
        .map(
            |((version, step_id, window_ms, feature, bin), (count, sum))| ProfileRow {
                version,
                step_id,
                window_ms,
                feature,
                bin,
                count,
                sum,
            },
        )
        .collect()
}

/// A filter's values, in its placeholders' order: text first, then the window bounds.
pub(crate) enum FilterValue<'a> {
    Text(&'a str),
    Ms(i64),
}

/// The values [`filter_sql`]'s placeholders take.
pub(crate) fn filter_values(filter: &ProfileFilter) -> Vec<FilterValue<'_>> {
    let mut values = vec![FilterValue::Text(&filter.workflow)];
    values.extend(filter.version.as_deref().map(FilterValue::Text));
    values.extend(filter.step_id.as_deref().map(FilterValue::Text));
    values.extend(filter.since_ms.map(FilterValue::Ms));
    values.extend(filter.until_ms.map(FilterValue::Ms));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(window_ms: i64, profile: &StepProfile) -> Pending {
        Pending {
            workflow: "triage".into(),
            version: "1.0.0".into(),
            step_id: "classify".into(),
            window_ms,
            counts: encode(profile),
        }
    }

    #[test]
    fn results_fold_into_the_counts_they_encode_and_add_to_folded_ones() {
        let mut one = StepProfile::default();
        one.add("status", "succeeded", 1, 0.0);
        one.add("input.bytes", "p120", 1, 40.5);
        assert_eq!(decode(&encode(&one)), one.counts);
        let mut odd = one.clone();
        odd.add("cat.quote", "say \"hi\"\n", 3, 1e-7);
        assert_eq!(
            decode(&encode(&odd)),
            odd.counts,
            "quotes, a newline, a count and a small sum"
        );
        let text = encode(&odd);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed["c"].as_array().map(Vec::len),
            to_value(&odd)["c"].as_array().map(Vec::len)
        );
        let folded = fold(&[pending(0, &one), pending(0, &one), pending(3_600_000, &one)]);
        assert_eq!(folded.len(), 2, "one per window");
        let bytes = folded[0]
            .counts
            .iter()
            .find(|c| c.feature == "input.bytes")
            .unwrap();
        assert_eq!((bytes.count, bytes.sum), (2, 81.0));

        let earlier = ProfileRow {
            version: "1.0.0".into(),
            step_id: "classify".into(),
            window_ms: 0,
            feature: "status".into(),
            bin: "succeeded".into(),
            count: 5,
            sum: 0.0,
        };
        let rows = merged(vec![earlier], vec![pending(0, &one)]);
        let status: Vec<i64> = rows
            .iter()
            .filter(|r| r.feature == "status")
            .map(|r| r.count)
            .collect();
        assert_eq!(status, [6]);
        assert_eq!(rows[0].feature, "input.bytes", "in feature order");
    }

    #[test]
    fn adding_to_a_bin_twice_keeps_one_entry_with_both_counts() {
        let mut profile = StepProfile::default();
        profile.add("input.fields", "body", 1, 0.0);
        profile.add("input.bytes", "+120", 1, 40.0);
        profile.add("input.fields", "body", 1, 0.0);
        assert_eq!(profile.counts.len(), 2);
        let sorted = profile.sorted();
        assert_eq!(sorted[0].feature, "input.bytes");
        assert_eq!((sorted[1].bin.as_str(), sorted[1].count), ("body", 2));
    }

    #[test]
    fn a_filter_names_a_placeholder_per_condition_in_value_order() {
        let filter = ProfileFilter {
            workflow: "triage".into(),
            step_id: Some("classify".into()),
            since_ms: Some(5),
            ..ProfileFilter::default()
        };
        let sql = pending_sql(&filter, |n| format!("${n}"));
        assert!(
            sql.contains("workflow = $1 AND step_id = $2 AND window_ms >= $3"),
            "{sql}"
        );
        let values = filter_values(&filter);
        assert!(matches!(
            values[..],
            [
                FilterValue::Text("triage"),
                FilterValue::Text("classify"),
                FilterValue::Ms(5)
            ]
        ));
    }
}
