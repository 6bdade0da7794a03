//! A string of a JSON file, borrowed from the file's bytes unless JSON escapes made it differ:
//! the state file and the summary are mostly names, and allocating each one made reading them
//! the main cost of `check` and of a `run` that reads little. serde borrows a `Cow<str>` only as
//! a field of its own, never inside a `Vec` or as a map key; this one borrows wherever it is.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_unless_escaped() {
        let texts: Vec<Text> = serde_json::from_str(r#"["mx1.example.com", "a\"b"]"#).unwrap();
        assert!(matches!(texts[0].0, Cow::Borrowed("mx1.example.com")));
        assert!(matches!(&texts[1].0, Cow::Owned(text) if text == "a\"b"));
        // Read from a stream, nothing can be borrowed.
        let mut stream = serde_json::Deserializer::from_reader(&b"\"x\""[..]);
        assert_eq!(Text::deserialize(&mut stream).unwrap().as_ref(), "x");
    }
}
