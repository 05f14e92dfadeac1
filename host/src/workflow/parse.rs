//! TOML text to the authored types, collecting every error rather than stopping at the first.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::authored::{HEADER_KEYS, Header, StepTable};
use super::diagnostic::{Diagnostic, did_you_mean};

/// The header and the steps that deserialized, plus a diagnostic for everything that did not.
pub(crate) fn parse(source: &str) -> (Option<Header>, Vec<StepTable>, Vec<Diagnostic>) {
    let (doc, syntax_errors) = DeTable::parse_recoverable(source);
    let mut diagnostics: Vec<Diagnostic> = syntax_errors.iter().map(from_toml_error).collect();
    if !diagnostics.is_empty() {
        return (None, Vec::new(), diagnostics);
    }
    let doc_span = doc.span();
    let mut table = doc.into_inner();

    let mut steps = Vec::new();
    match table.remove("steps") {
        None => diagnostics.push(
            Diagnostic::whole_file("the workflow has no steps")
                .help("add at least one [[steps]] table with an `id` and a `plugin`"),
        ),
        Some(value) => {
            let span = value.span();
            match value.into_inner() {
                DeValue::Array(items) => {
                    for item in items {
                        match StepTable::deserialize(ValueDeserializer::from(item)) {
                            Ok(step) => steps.push(step),
                            Err(e) => diagnostics.push(from_toml_error(&e)),
                        }
                    }
                }
                _ => diagnostics.push(
                    Diagnostic::at(span, "`steps` must be an array of tables")
                        .help("write each step as a [[steps]] table"),
                ),
            }
        }
    }

    let header = match Header::deserialize(ValueDeserializer::from(Spanned::new(
        doc_span,
        DeValue::Table(table),
    ))) {
        Ok(header) => Some(header),
        Err(e) => {
            let mut d = from_toml_error(&e);
            if d.message.starts_with("unknown key") && d.help.is_none() {
                d.help = Some(format!("allowed keys: {}", HEADER_KEYS.join(", ")));
            }
            diagnostics.push(d);
            None
        }
    };
    diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    (header, steps, diagnostics)
}

/// A TOML or serde error as a diagnostic; unknown keys get a "did you mean".
fn from_toml_error(error: &toml::de::Error) -> Diagnostic {
    let message = error.message().trim().to_string();
    let span = error.span().unwrap_or(0..0);
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once('`')
    {
        let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let d = Diagnostic::at(span, format!("unknown key `{key}`"));
        return match did_you_mean(key, allowed.iter().copied()) {
            Some(close) => d.help(format!("did you mean `{close}`?")),
            None if !allowed.is_empty() => d.help(format!("allowed keys: {}", allowed.join(", "))),
            None => d,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return Diagnostic::at(span, format!("missing required key `{key}`"));
    }
    Diagnostic::at(span, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_errors_from_every_step() {
        let source = "name = \"w\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"a\"\nplugn = \"x\"\n[[steps]]\nid = \"b\"\nplugin = \"y\"\naftr = [\"a\"]\n";
        let (header, steps, diagnostics) = parse(source);
        assert!(header.is_some());
        assert_eq!(steps.len(), 0);
        let messages: Vec<_> = diagnostics
            .iter()
            .map(|d| (d.message.as_str(), d.help.as_deref()))
            .collect();
        assert_eq!(
            messages,
            vec![
                ("unknown key `plugn`", Some("did you mean `plugin`?")),
                ("unknown key `aftr`", Some("did you mean `after`?")),
            ]
        );
    }
}
