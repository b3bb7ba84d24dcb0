//! Per-image prices by size and quality: `[[prices.images]]` tables under a price entry.
//!
//! ```toml
//! [[prices]]
//! provider = "openai"
//! model = "dall-e-3"
//! effective = "2023-11-06"
//! per_image = "0.040"                 # when no size/quality entry matches
//! [[prices.images]]
//! size = "1024x1792"
//! quality = "hd"
//! price = "0.120"
//! ```
//!
//! An entry matches when each of its `size` and `quality` is absent or equal (ASCII case
//! ignored) to the request's; the most specific match wins (both given, then size, then
//! quality). A request that names no size or quality matches only entries that leave it out.

use super::error::Locator;
use super::{ModelPrice, PriceError};
use rust_decimal::Decimal;
use serde::Deserialize;
use toml::{Spanned, Value};

/// One per-image price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePrice {
    pub size: Option<String>,
    pub quality: Option<String>,
    pub price: Decimal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImagePrice {
    size: Option<Spanned<String>>,
    quality: Option<Spanned<String>>,
    price: Spanned<Value>,
}

pub(super) fn parse(
    loc: &Locator,
    field: &str,
    raw: &[Spanned<RawImagePrice>],
) -> Result<Vec<ImagePrice>, PriceError> {
    let mut out: Vec<ImagePrice> = Vec::with_capacity(raw.len());
    for (j, r) in raw.iter().enumerate() {
        let f = format!("{field}.images[{j}]");
        let r_ref = r.get_ref();
        let text = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<String>, PriceError> {
            match v {
                None => Ok(None),
                Some(s) if s.get_ref().trim().is_empty() || s.get_ref().trim() != s.get_ref() => {
                    Err(loc.error(
                        s.span(),
                        format!("{f}.{key}"),
                        "must be a non-empty value without surrounding spaces",
                    ))
                }
                Some(s) => Ok(Some(s.get_ref().to_ascii_lowercase())),
            }
        };
        let entry = ImagePrice {
            size: text(&r_ref.size, "size")?,
            quality: text(&r_ref.quality, "quality")?,
            price: super::parse::price(loc, &format!("{f}.price"), "price", &r_ref.price)?,
        };
        if entry.size.is_none() && entry.quality.is_none() {
            return Err(loc.error(
                r.span(),
                f,
                "give a `size` and/or a `quality` (the price for neither is `per_image`)",
            ));
        }
        if out
            .iter()
            .any(|e| e.size == entry.size && e.quality == entry.quality)
        {
            return Err(loc.error(
                r.span(),
                f,
                "another entry already prices this size and quality",
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

impl ModelPrice {
    /// The price of one image of `size` and `quality` (either may be unknown), or `per_image`.
    pub fn per_image_for(&self, size: Option<&str>, quality: Option<&str>) -> Option<Decimal> {
        let eq = |want: &Option<String>, have: Option<&str>| match (want, have) {
            (None, _) => true,
            (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
            (Some(_), None) => false,
        };
        self.images
            .iter()
            .filter(|e| eq(&e.size, size) && eq(&e.quality, quality))
            .max_by_key(|e| (e.size.is_some() && e.quality.is_some(), e.size.is_some()))
            .map(|e| e.price)
            .or(self.per_image)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PriceBook;
    use rust_decimal::Decimal;

    const FILE: &str = r#"
[[prices]]
provider = "openai"
model = "dall-e-3"
effective = "2023-11-06"
per_image = "0.040"
source = "test"
checked = "2026-12-01"
[[prices.images]]
size = "1024x1792"
price = "0.080"
[[prices.images]]
quality = "hd"
price = "0.080"
[[prices.images]]
size = "1024x1792"
quality = "HD"
price = "0.120"
"#;

    #[test]
    fn the_most_specific_price_wins() {
        let book = PriceBook::parse("t.toml", FILE).unwrap();
        let p = book
            .lookup(
                "openai",
                "dall-e-3",
                crate::pricing::PriceDate::parse("2025-01-01").unwrap(),
            )
            .unwrap();
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(
            p.per_image_for(Some("1024x1792"), Some("hd")),
            Some(d("0.120"))
        );
        assert_eq!(
            p.per_image_for(Some("1024x1792"), Some("standard")),
            Some(d("0.080"))
        );
        assert_eq!(
            p.per_image_for(Some("1024x1024"), Some("hd")),
            Some(d("0.080"))
        );
        assert_eq!(p.per_image_for(Some("1024x1024"), None), Some(d("0.040")));
        assert_eq!(p.per_image_for(None, None), Some(d("0.040")));
    }

    #[test]
    fn bad_entries_name_their_field() {
        let e = PriceBook::parse(
            "t.toml",
            "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\nsource = \"t\"\nchecked = \"2026-12-01\"\n[[prices.images]]\nprice = \"1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("prices[0].images[0]"), "{e}");
        let e = PriceBook::parse(
            "t.toml",
            "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\nsource = \"t\"\nchecked = \"2026-12-01\"\n[[prices.images]]\nsize = \"1x1\"\nprice = 0.5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("prices[0].images[0].price") && e.contains("float"),
            "{e}"
        );
        // An entry priced only by size/quality is priced.
        assert!(PriceBook::parse(
            "t.toml",
            "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\nsource = \"t\"\nchecked = \"2026-12-01\"\n[[prices.images]]\nsize = \"1x1\"\nprice = \"0.5\"\n",
        )
        .is_ok());
    }
}

#[cfg(test)]
mod media_list_tests {
    use super::super::*;

    /// The shipped list carries the media models beside the text ones, dall-e-3 with its
    /// size/quality prices.
    #[test]
    fn shipped_media_prices() {
        let book = PriceBook::builtin();
        let at = PriceDate::parse("2026-12-01").unwrap();
        let dalle = book.lookup("openai", "dall-e-3", at).unwrap();
        assert_eq!(dalle.images.len(), 7);
        assert!(book.lookup("groq", "whisper-large-v3-turbo", at).is_some());
        assert!(book.lookup("openai", "whisper-1", at).is_some());
        assert!(book.lookup("xai", "grok-2-image", at).is_some());
    }
}
