//! Weir's integration tests: one binary, real components built from `plugins/`.

mod api_errors;
mod backend;
mod catalog;
mod cli;
mod connections;
mod cost;
mod crash;
mod eval;
mod fleet;
mod hostile;
mod loading;
mod model;
mod model_layer;
mod monitor;
mod polyglot;
mod provider;
mod readme;
mod readme_shell;
mod replay;
mod review;
mod rollout;
mod serve;
mod shadow;
mod shared_journal;
mod sidecar;
mod spans;
mod steps;
mod support;
mod traces;
mod ui;
mod ui_browser;
mod ui_costs;
mod ui_login;
mod ui_reviews;
mod workflows;

/// Every plugin in `plugins/` must have a test function of the same name.
mod coverage {
    #[allow(
        unused_imports,
        reason = "glob imports bring the per-plugin test functions into scope"
    )]
    use super::{hostile::*, model_layer::*, steps::*};

    macro_rules! assert_test_exists {
        ($name:ident) => {
            #[allow(unused_imports, reason = "only checks that the test exists")]
            use self::$name as _;
        };
    }
    weir_artifacts::foreach_plugin!(assert_test_exists);
}
