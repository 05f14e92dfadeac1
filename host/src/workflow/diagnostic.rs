//! Errors in a workflow file, each pointing at a line and column, rendered the way compilers
//! render them: the message, the place, the source line with a caret, and how to fix it.

use std::fmt;
use std::ops::Range;

/// One problem in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the file the problem is about, when known.
    pub span: Option<Range<usize>>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something to say.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `span`.
    pub fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span: Some(span),
            message: message.into(),
            help: None,
        }
    }

    /// A problem with no particular place.
    pub fn whole_file(message: impl Into<String>) -> Self {
        Self {
            span: None,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint on how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file name as given.
    pub file: String,
    /// The file's text, for line and column numbers and quoting.
    pub source: String,
    /// The problems, in file order.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The 1-based line and column of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "error: {}", d.message)?;
            match &d.span {
                Some(span) => {
                    let (line, col) = self.line_col(span.start);
                    let text = self.source.lines().nth(line - 1).unwrap_or_default();
                    let width = line.to_string().len();
                    writeln!(f, "{:width$}--> {}:{line}:{col}", "", self.file)?;
                    let span_text = &self.source
                        [span.start.min(self.source.len())..span.end.min(self.source.len())];
                    let len = span_text
                        .lines()
                        .next()
                        .map_or(1, |l| l.chars().count().max(1));
                    let len = len.min(text.chars().count().saturating_sub(col - 1).max(1));
                    writeln!(f, "{:width$} |", "")?;
                    writeln!(f, "{line} | {text}")?;
                    writeln!(
                        f,
                        "{:width$} | {}{}",
                        "",
                        " ".repeat(col - 1),
                        "^".repeat(len)
                    )?;
                }
                None => writeln!(f, " --> {}", self.file)?,
            }
            if let Some(help) = &d.help {
                let width = d
                    .span
                    .as_ref()
                    .map_or(1, |s| self.line_col(s.start).0.to_string().len());
                writeln!(f, "{:width$} = help: {help}", "")?;
            }
        }
        let n = self.items.len();
        write!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.file
        )
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_place_source_and_help() {
        let d = Diagnostics {
            file: "wf.toml".into(),
            source: "name = \"x\"\naftr = 1\n".into(),
            items: vec![Diagnostic::at(11..15, "unknown key `aftr`").help("did you mean `after`?")],
        };
        assert_eq!(
            d.to_string(),
            "error: unknown key `aftr`\n --> wf.toml:2:1\n  |\n2 | aftr = 1\n  | ^^^^\n  = help: did you mean `after`?\n1 error in wf.toml"
        );
    }

    #[test]
    fn suggests_only_close_words() {
        assert_eq!(
            did_you_mean("aftr", ["after", "when", "input"]),
            Some("after")
        );
        assert_eq!(did_you_mean("zzz", ["after", "when"]), None);
    }
}
