//! How texts are prepared before encoding.

/// Joins a BEIR document's title and text the way BEIR does before encoding:
/// `(title + " " + text).strip()`, which is just the stripped text when the title is empty.
///
/// ```
/// use bmp_encoder::beir_document_text;
/// assert_eq!(beir_document_text("Title", "Body text."), "Title Body text.");
/// assert_eq!(beir_document_text("", "  Body text. "), "Body text.");
/// ```
pub fn beir_document_text(title: &str, text: &str) -> String {
    let mut joined = String::with_capacity(title.len() + 1 + text.len());
    joined.push_str(title);
    joined.push(' ');
    joined.push_str(text);
    let trimmed = joined.trim_matches(is_python_whitespace);
    if trimmed.len() == joined.len() {
        joined
    } else {
        trimmed.to_owned()
    }
}

/// Python's `str.isspace()`: Unicode White_Space plus the information separators U+001C..U+001F.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::beir_document_text;

    #[test]
    fn joins_title_and_text_with_one_space() {
        assert_eq!(
            beir_document_text("A title", "Some text"),
            "A title Some text"
        );
    }

    #[test]
    fn empty_title_gives_the_text() {
        assert_eq!(beir_document_text("", "Some text"), "Some text");
        assert_eq!(beir_document_text("", "  Some text\n"), "Some text");
    }

    #[test]
    fn strips_only_the_ends() {
        assert_eq!(beir_document_text(" T ", " x  y "), "T   x  y");
        assert_eq!(beir_document_text("Title", ""), "Title");
        assert_eq!(beir_document_text("", ""), "");
        assert_eq!(beir_document_text("\u{a0}T", "x\u{3000}"), "T x");
        assert_eq!(beir_document_text("\u{1f}T", "x"), "T x");
    }
}
