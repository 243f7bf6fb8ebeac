//! Cache in front of a primary source: TTL, single-flight, last good, fallback. (stub)
use super::{BoxFuture, PriceError, PriceKey, PriceSource, Rate};
use aws_smithy_async::time::SharedTimeSource;
use std::sync::Arc;
use std::time::Duration;

/// Caching price source (stub, being written).
#[derive(Debug)]
pub struct CachedPrices {
    primary: Arc<dyn PriceSource>,
    fallback: Option<Arc<dyn PriceSource>>,
}

impl CachedPrices {
    /// Builder.
    pub fn builder(primary: impl PriceSource + 'static) -> CachedPricesBuilder {
        CachedPricesBuilder {
            primary: Arc::new(primary),
            fallback: None,
        }
    }
}

/// Builder for [`CachedPrices`].
#[derive(Debug)]
pub struct CachedPricesBuilder {
    primary: Arc<dyn PriceSource>,
    fallback: Option<Arc<dyn PriceSource>>,
}

impl CachedPricesBuilder {
    /// Fallback source.
    pub fn fallback(mut self, fallback: impl PriceSource + 'static) -> Self {
        self.fallback = Some(Arc::new(fallback));
        self
    }
    /// TTL.
    pub fn ttl(self, _ttl: Duration) -> Self {
        self
    }
    /// Time source.
    pub fn time_source(self, _ts: SharedTimeSource) -> Self {
        self
    }
    /// Build.
    pub fn build(self) -> CachedPrices {
        CachedPrices {
            primary: self.primary,
            fallback: self.fallback,
        }
    }
}

impl PriceSource for CachedPrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move {
            match self.primary.price(key).await {
                Ok(r) => Ok(r),
                Err(e) => match &self.fallback {
                    Some(f) => f.price(key).await,
                    None => Err(e),
                },
            }
        })
    }
}
