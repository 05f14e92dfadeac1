//! Parsers for argument values: sizes, durations, counts, and step input.

use anyhow::{Context, bail};
use std::io::Read;
use std::path::Path;

pub(crate) use crate::limits::{parse_duration, parse_size};

/// `1000000` or `1_000_000`.
pub(crate) fn parse_count(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|e| format!("{text:?} is not a whole number: {e}"))
}

/// The step input from `--input`: `-` for stdin, a path to a JSON file, or JSON text.
/// Returns the JSON text (validated) and where it came from, for messages.
pub(crate) fn read_input(arg: &str) -> anyhow::Result<(String, String)> {
    let (text, origin) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read the input from stdin")?;
        (text, "stdin".to_string())
    } else if Path::new(arg).is_file() {
        let text = std::fs::read_to_string(arg)
            .with_context(|| format!("failed to read input file {arg:?}"))?;
        (text, format!("file {arg:?}"))
    } else {
        let looks_like_json = arg.trim_start().starts_with(['{', '[', '"'])
            || serde_json::from_str::<serde_json::Value>(arg).is_ok();
        if !looks_like_json {
            bail!(
                "--input {arg:?} is neither an existing file nor JSON text (use - to read stdin)"
            );
        }
        (arg.to_string(), "--input".to_string())
    };
    // Editors on Windows start UTF-8 files with a byte order mark; it is no part of the JSON.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        bail!("input from {origin} is not valid JSON: {e}");
    }
    Ok((text, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_durations_and_counts() {
        assert_eq!(parse_size("64MiB"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn input_errors_name_the_source_and_position() {
        let err = read_input(r#"{"a": }"#).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "input from --input is not valid JSON: expected value at line 1 column 7"
            ),
            "{err}"
        );
        let err = read_input("no-such-file.json").unwrap_err().to_string();
        assert!(
            err.contains("is neither an existing file nor JSON text"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.json");
        std::fs::write(&file, "{\n  \"a\": 1,\n}").unwrap();
        let err = read_input(file.to_str().unwrap()).unwrap_err().to_string();
        assert!(
            err.contains("bad.json") && err.contains("line 3 column 1"),
            "{err}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_no_part_of_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bom.json");
        std::fs::write(&file, "\u{feff}{\"a\": 1}").unwrap();
        let (text, _) = read_input(file.to_str().unwrap()).unwrap();
        assert_eq!(text, r#"{"a": 1}"#);
    }
}
