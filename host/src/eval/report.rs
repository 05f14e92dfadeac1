//! The evaluation's self-contained HTML report: one file with its own styles and no
//! scripts, to attach to a pull request or open from CI's artifacts.

use std::sync::OnceLock;

use minijinja::Environment;

use super::Experiment;

const TEMPLATE: &str = include_str!("report.html");

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` turns escaping on: case data is whatever the steps produced.
        env.add_template("report.html", TEMPLATE)
            .expect("the report template parses");
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env
    })
}

/// The report of `experiment`, as an HTML document.
pub fn html(experiment: &Experiment) -> anyhow::Result<String> {
    let template = environment().get_template("report.html")?;
    let cases: Vec<_> = experiment
        .cases
        .iter()
        .map(|c| {
            minijinja::context! {
                run_id => c.run_id,
                regressions => c.regressions,
                error => c.error,
                skipped => c.skipped,
                output_same => c.output_same,
                steps => c.steps.iter().filter(|s| !s.output_same || s.route.0 != s.route.1).map(|s| minijinja::context! {
                    step => s.step,
                    from => s.route.0,
                    to => s.route.1,
                    diff => serde_json::to_string_pretty(&s.diff).unwrap_or_default(),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    Ok(template.render(minijinja::context! {
        workflow => experiment.workflow,
        candidate => experiment.candidate,
        s => minijinja::Value::from_serialize(&experiment.summary),
        cases => cases,
    })?)
}
