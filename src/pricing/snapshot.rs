//! Bundled price snapshot (stub, being written).
use super::{BoxFuture, PriceError, PriceKey, PriceSource, Rate};

/// Bundled snapshot source (stub).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {}

impl Snapshot {
    /// The bundled snapshot.
    pub fn bundled() -> Self {
        Snapshot {}
    }
}

impl PriceSource for Snapshot {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { Err(PriceError::NotFound { key: key.clone() }) })
    }
}
