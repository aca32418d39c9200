//! FITS headers: card images, values, and which keywords are structural.

use std::path::{Path, PathBuf};

/// A FITS header: its 80-character card images, in order, without the `END` card.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    cards: Vec<String>,
    pub(super) source: Option<PathBuf>,
}

/// Keywords that describe the data layout and are rewritten, never copied, on output.
fn is_structural(key: &str) -> bool {
    matches!(
        key,
        "SIMPLE"
            | "XTENSION"
            | "BITPIX"
            | "NAXIS"
            | "EXTEND"
            | "PCOUNT"
            | "GCOUNT"
            | "BSCALE"
            | "BZERO"
            | "BLANK"
            | "CHECKSUM"
            | "DATASUM"
            | "END"
            | "THEAP"
            | "TFIELDS"
    ) || (key.starts_with("NAXIS") && key[5..].chars().all(|c| c.is_ascii_digit()))
        || key.starts_with("ZIMAGE")
        || key.starts_with("ZCMPTYPE")
        || key.starts_with("ZBITPIX")
        || key.starts_with("ZNAXIS")
        || key.starts_with("ZTILE")
        || key.starts_with("ZNAME")
        || key.starts_with("ZVAL")
        || key.starts_with("ZQUANTIZ")
        || key.starts_with("ZDITHER")
}

impl Header {
    /// A header from card images (each padded or truncated to 80 characters). `END` is dropped.
    pub fn from_cards<I: IntoIterator<Item = String>>(cards: I) -> Self {
        let cards = cards
            .into_iter()
            .map(|c| format!("{c:<80.80}"))
            .filter(|c| c.trim_end() != "END")
            .collect();
        Header {
            cards,
            source: None,
        }
    }

    /// All card images (80 characters each), in file order.
    pub fn cards(&self) -> &[String] {
        &self.cards
    }

    /// The file this header was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The keyword of a card (columns 1–8, trimmed; `HIERARCH` cards give their full name).
    pub fn card_key(card: &str) -> &str {
        let k = card.get(..8).unwrap_or(card).trim_end();
        if k == "HIERARCH" {
            if let Some(eq) = card.find('=') {
                return card[8..eq].trim();
            }
        }
        k
    }

    /// The cards that [`write_fits`](super::write_fits) copies: all but the structural keywords.
    pub fn non_structural(&self) -> impl Iterator<Item = &str> {
        self.cards
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !is_structural(Header::card_key(c)))
    }

    /// The raw value text of the first card with this keyword (between `= ` and the comment
    /// slash; string values keep their quotes), or `None`.
    pub fn raw_value(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_uppercase();
        self.cards.iter().find_map(|c| {
            if Header::card_key(c) != key || c.get(8..10) != Some("= ") {
                return None;
            }
            Some(split_value(&c[10..]))
        })
    }

    /// A numeric keyword's value (integers and reals; `D` exponents accepted).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.raw_value(key)
            .and_then(|v| v.trim().replace(['D', 'd'], "E").parse::<f64>().ok())
    }

    /// A string keyword's value, quotes removed, doubled quotes undone, trailing blanks trimmed.
    pub fn get_str(&self, key: &str) -> Option<String> {
        let v = self.raw_value(key)?.trim();
        let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'").trim_end().to_string())
    }

    /// Append (or replace, when the keyword exists) a numeric card `KEY = value / comment`.
    pub fn set_f64(&mut self, key: &str, value: f64, comment: &str) {
        let v = if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{}", value as i64)
        } else {
            format!("{value:.12E}")
        };
        self.set_raw(key, &v, comment);
    }

    /// Append (or replace) a string card `KEY = 'value' / comment`.
    pub fn set_str(&mut self, key: &str, value: &str, comment: &str) {
        let v = format!("'{:<8}'", value.replace('\'', "''"));
        self.set_raw(key, &v, comment);
    }

    fn set_raw(&mut self, key: &str, value: &str, comment: &str) {
        let key = key.to_ascii_uppercase();
        let card = format!("{key:<8}= {value:>20} / {comment}");
        let card = format!("{card:<80.80}");
        if let Some(c) = self
            .cards
            .iter_mut()
            .find(|c| Header::card_key(c) == key && c.get(8..10) == Some("= "))
        {
            *c = card;
        } else {
            self.cards.push(card);
        }
    }
}

/// The value part of a card's value field: up to a `/` that is outside a quoted string.
fn split_value(field: &str) -> &str {
    let mut in_str = false;
    for (i, ch) in field.char_indices() {
        match ch {
            '\'' => in_str = !in_str,
            '/' if !in_str => return field[..i].trim(),
            _ => {}
        }
    }
    field.trim()
}
