//! Tokenization shared by the ticket classifier and the build script that trains it, so
//! training and inference see exactly the same features.

/// Words too common to say anything about a ticket's topic.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but",
    "by", "can", "could", "did", "do", "does", "for", "from", "get", "got", "had", "has", "have",
    "hi", "how", "i", "if", "im", "in", "is", "it", "its", "just", "me", "my", "no", "not", "of",
    "on", "or", "our", "please", "so", "still", "that", "the", "their", "them", "then", "there",
    "this", "to", "us", "was", "we", "were", "what", "when", "which", "why", "will", "with",
    "would", "you", "your",
];

/// Lower-cased alphabetic words of two letters or more, without stopwords, with a plural
/// `s` stripped so "invoices" and "invoice" count as one feature.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2)
        .map(|w| w.to_ascii_lowercase())
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_string(),
            _ => w,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_normalized() {
        assert_eq!(
            super::tokens("Hi! My Invoices were WRONG, 2x."),
            vec!["invoice", "wrong"]
        );
    }
}
