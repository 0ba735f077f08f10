//! Text from outside (a store, a repository, a status file) made safe to print.

use std::borrow::Cow;

/// `text` with every control character and bidirectional override shown as an escape
/// (`\u{1b}`), so that nothing read from a store or a file can move the cursor, recolour,
/// reorder or rewrite what the user's terminal shows.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            shown.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// Bytes from outside (a file name) made safe to print: UTF-8 as [`printable`] shows it, and
/// each byte that is not UTF-8 as `\xe9`.
pub fn printable_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return printable(text);
    }
    let mut shown = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        shown.push_str(&printable(chunk.valid()));
        for byte in chunk.invalid() {
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    Cow::Owned(shown)
}

/// An error and its causes on one line: `what failed: cause: cause`.
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        // `Hinted` and `#[error(transparent)]` repeat their source's text: print it once.
        if !message.ends_with(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        next = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_and_bidi_overrides_are_shown_as_escapes() {
        assert_eq!(super::printable("plain text: ok"), "plain text: ok");
        assert_eq!(
            super::printable("\u{1b}[31mred\u{7}\r\n\u{9b}\u{202e}"),
            r"\u{1b}[31mred\u{7}\u{d}\u{a}\u{9b}\u{202e}"
        );
        assert_eq!(
            super::printable_bytes(b"caf\xe9\n.txt"),
            r"caf\xe9\u{a}.txt"
        );
        assert_eq!(super::printable_bytes("données".as_bytes()), "données");
    }
}
