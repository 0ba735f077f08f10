//! Text from outside (a store, a repository, a status file) made safe to print.

use std::borrow::Cow;

/// `text` with every control character escaped (`\u{1b}`, `\n`), so that nothing read from a
/// store or a file can move the cursor, recolour or rewrite the user's terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::printable("main"), "main");
        assert_eq!(super::printable("x\u{1b}[31mred\n"), "x\\u{1b}[31mred\\n");
    }
}
