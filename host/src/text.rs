//! Guest-provided text: bounded before the host keeps it, escaped before a terminal shows it.
//!
//! A step chooses the words of its errors, its log lines, the targets it is refused and its
//! own metadata. None of them may grow the host's memory or the journal without bound, and
//! none may drive the operator's terminal: an ANSI or OSC sequence, a bare newline that forges
//! a report line, or a bidirectional override that reorders what is shown. So text is cut to a
//! documented size with a marker that says how long it was, and shown with control, invisible
//! and bidirectional characters written out as `\u{…}` escapes. JSON output is left exact: a
//! JSON encoder escapes control characters itself, and machines read it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Cuts `text` to at most `max` bytes (on a character boundary) and, when anything was cut,
/// appends a marker naming the original length: `… [truncated, 16777216 bytes]`. The result
/// is at most `max` plus [`MARKER_BYTES`] bytes long.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    text.truncate(boundary_at_most(&text, max));
    let _ = write!(text, "… [truncated, {total} bytes]");
    text
}

/// The same as [`truncate`], for borrowed text: only the kept prefix is copied.
pub fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let kept = &text[..boundary_at_most(text, max)];
    format!("{kept}… [truncated, {} bytes]", text.len())
}

/// The longest marker [`truncate`] appends: `… [truncated, ` plus 20 digits and ` bytes]`.
pub const MARKER_BYTES: usize = "… [truncated, ".len() + 20 + " bytes]".len();

fn boundary_at_most(text: &str, max: usize) -> usize {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Characters that change how text is shown rather than adding to it: the bidirectional
/// embeddings, overrides and isolates, zero-width characters, line and paragraph separators
/// and the byte-order mark. Together with [`char::is_control`] these are what
/// [`escape_for_terminal`] writes out.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                   // Arabic letter mark
            | '\u{115F}' | '\u{1160}'  // Hangul fillers, shown as nothing
            | '\u{180E}'              // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates
            | '\u{3164}'              // Hangul filler
            | '\u{FEFF}'              // byte-order mark, zero-width no-break space
            | '\u{FFA0}'              // halfwidth Hangul filler
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
    )
}

/// `text` with every control, invisible and bidirectional character written as a `\u{…}`
/// escape (a newline as `\n`, a tab as `\t`), and a backslash as `\\` so an escape cannot be
/// forged: one guest record stays one line and cannot move the cursor, clear the screen,
/// set the window title, plant a hyperlink or reorder what follows it.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || c.is_control() || is_invisible_or_bidi(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text (as `serde_json` writes it) with every invisible or bidirectional character
/// written as a `\uXXXX` escape. The encoder already escapes control characters; these are
/// the rest, and outside strings JSON has none, so the document means exactly the same value:
/// printed JSON stays exact for machines and cannot reorder a terminal line for people.
pub fn json_for_terminal(json: String) -> String {
    if !json.chars().any(is_invisible_or_bidi) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible_or_bidi(c) {
            // Every such character is in the Basic Multilingual Plane: one escape each.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_a_prefix_and_names_the_length() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(
            truncate("0123456789".into(), 4),
            "0123… [truncated, 10 bytes]"
        );
        // Never splits a character: "é" is two bytes.
        assert_eq!(truncate("éé".into(), 3), "é… [truncated, 4 bytes]");
        let long = truncate("x".repeat(1 << 24), 100);
        assert!(long.len() <= 100 + MARKER_BYTES, "{}", long.len());
        assert!(long.ends_with("… [truncated, 16777216 bytes]"), "{long}");
        assert_eq!(truncated("0123456789", 4), "0123… [truncated, 10 bytes]");
        assert_eq!(truncated("ok", 4), "ok");
    }

    #[test]
    fn terminal_escaping_writes_out_what_would_steer_the_terminal() {
        assert!(matches!(escape_for_terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_for_terminal("\u{1b}[2K\r  ✓ forged\nnext"),
            "\\u{1b}[2K\\r  ✓ forged\\nnext"
        );
        assert_eq!(
            escape_for_terminal("\u{1b}]8;;http://x\u{7}link"),
            "\\u{1b}]8;;http://x\\u{7}link"
        );
        assert_eq!(
            escape_for_terminal("a\u{202E}b\u{200B}c\u{2028}d"),
            "a\\u{202e}b\\u{200b}c\\u{2028}d"
        );
        // A guest cannot forge an escape that reads as the host's own.
        assert_eq!(escape_for_terminal("\\u{1b}"), "\\\\u{1b}");
        let json = serde_json::to_string(&serde_json::json!({"k": "a\u{202E}b\u{1b}"})).unwrap();
        let shown = json_for_terminal(json);
        assert_eq!(shown, r#"{"k":"a\u202eb\u001b"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&shown).unwrap(),
            serde_json::json!({"k": "a\u{202E}b\u{1b}"})
        );
        assert_eq!(
            escape_for_terminal("naïve 日本語 tab\t"),
            "naïve 日本語 tab\\t"
        );
    }
}
