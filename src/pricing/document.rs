//! Price List document parsing (stub, being written).
use super::{PriceError, PriceKey};
use rust_decimal::Decimal;

/// One parsed Price List product document.
#[derive(Debug, Clone)]
pub struct PriceDocument {}

/// Parses one `PriceList` element.
pub fn parse_price_document(_json: &str) -> Result<PriceDocument, PriceError> {
    Err(PriceError::Malformed {
        reason: "not implemented".into(),
    })
}

/// Picks the rate for `key` among documents.
pub fn select_rate(
    key: &PriceKey,
    _docs: &[PriceDocument],
) -> Result<(Decimal, String, Option<String>), PriceError> {
    Err(PriceError::NotFound { key: key.clone() })
}
