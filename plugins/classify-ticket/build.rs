//! Trains the multinomial naive Bayes model from the labelled tickets in
//! `examples/ticket-triage/data/tickets.csv` and writes it as Rust constants, so the
//! component carries its weights and needs no I/O at run time. Also estimates accuracy by
//! 5-fold cross-validation and records it for `describe()`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Laplace smoothing: every word is seen once more than it was, in every class.
const ALPHA: f64 = 1.0;
const FOLDS: usize = 5;

struct Example {
    label: String,
    tokens: Vec<String>,
}

struct Model {
    labels: Vec<String>,
    priors: Vec<f64>,
    /// Per word, the log-probability of the word in each class.
    words: BTreeMap<String, Vec<f64>>,
    /// Log-probability of an unseen word in each class.
    unseen: Vec<f64>,
}

fn train(examples: &[&Example]) -> Model {
    let labels: Vec<String> = examples
        .iter()
        .map(|e| e.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let vocab: BTreeSet<&String> = examples.iter().flat_map(|e| &e.tokens).collect();
    let mut counts: BTreeMap<&String, Vec<f64>> = vocab
        .iter()
        .map(|w| (*w, vec![0.0; labels.len()]))
        .collect();
    let mut totals = vec![0.0; labels.len()];
    let mut docs = vec![0.0; labels.len()];
    for e in examples {
        let class = labels.iter().position(|l| *l == e.label).unwrap();
        docs[class] += 1.0;
        for t in &e.tokens {
            counts.get_mut(t).unwrap()[class] += 1.0;
            totals[class] += 1.0;
        }
    }
    let v = vocab.len() as f64;
    let denominators: Vec<f64> = totals.iter().map(|t| t + ALPHA * v).collect();
    Model {
        priors: docs
            .iter()
            .map(|d| (d / examples.len() as f64).ln())
            .collect(),
        words: counts
            .into_iter()
            .map(|(w, c)| {
                (
                    w.clone(),
                    c.iter()
                        .zip(&denominators)
                        .map(|(c, d)| ((c + ALPHA) / d).ln())
                        .collect(),
                )
            })
            .collect(),
        unseen: denominators.iter().map(|d| (ALPHA / d).ln()).collect(),
        labels,
    }
}

fn predict(model: &Model, tokens: &[String]) -> usize {
    let mut scores = model.priors.clone();
    for t in tokens {
        let row = model.words.get(t).unwrap_or(&model.unseen);
        for (s, w) in scores.iter_mut().zip(row) {
            *s += w;
        }
    }
    (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap()
}

fn main() {
    let data = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../examples/ticket-triage/data/tickets.csv");
    println!("cargo:rerun-if-changed={}", data.display());
    let mut reader = csv::Reader::from_path(&data)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", data.display()));
    let examples: Vec<Example> = reader
        .records()
        .map(|r| {
            let r = r.expect("a well-formed CSV row");
            Example {
                label: r[0].to_string(),
                tokens: textkit::tokens(&format!("{} {}", &r[1], &r[2])),
            }
        })
        .collect();

    // k-fold cross-validation: every example is predicted by a model that never saw it.
    let mut correct = 0;
    for fold in 0..FOLDS {
        let train_set: Vec<&Example> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS != fold)
            .map(|(_, e)| e)
            .collect();
        let model = train(&train_set);
        for e in examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS == fold)
            .map(|(_, e)| e)
        {
            if model.labels[predict(&model, &e.tokens)] == e.label {
                correct += 1;
            }
        }
    }
    let accuracy = correct as f64 / examples.len() as f64;

    let model = train(&examples.iter().collect::<Vec<_>>());
    let mut code = String::new();
    code.push_str(&format!(
        "pub const LABELS: &[&str] = &{:?};\n",
        model.labels
    ));
    code.push_str(&format!(
        "pub const PRIORS: &[f64] = &{:?};\n",
        model.priors
    ));
    code.push_str(&format!(
        "pub const UNSEEN: &[f64] = &{:?};\n",
        model.unseen
    ));
    code.push_str(&format!(
        "pub const TRAINED_ON: usize = {};\n",
        examples.len()
    ));
    code.push_str(&format!("pub const CV_ACCURACY: f64 = {accuracy:.4};\n"));
    code.push_str(
        "/// Sorted by word, for binary search.\npub const WORDS: &[(&str, &[f64])] = &[\n",
    );
    for (word, row) in &model.words {
        code.push_str(&format!("    ({word:?}, &{row:?}),\n"));
    }
    code.push_str("];\n");
    std::fs::write(
        PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("model.rs"),
        code,
    )
    .unwrap();
}
