//! Live prices from the AWS Price List Query API (stub, being written).
use super::{BoxFuture, PriceError, PriceKey, PriceSource, Rate};

/// Which Price List API endpoint region to use.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PricingRegion {
    /// us-east-1 (default).
    #[default]
    UsEast1,
    /// eu-central-1.
    EuCentral1,
    /// ap-south-1.
    ApSouth1,
}

/// Live Price List source (stub).
#[derive(Debug, Clone)]
pub struct LivePrices {}

/// Builder for [`LivePrices`].
#[derive(Debug)]
pub struct LivePricesBuilder {}

impl LivePrices {
    /// From SDK config.
    pub fn from_sdk_config(_c: &aws_types::SdkConfig) -> Self {
        LivePrices {}
    }
}

impl PriceSource for LivePrices {
    fn price<'a>(&'a self, _key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move {
            Err(PriceError::Unavailable {
                reason: "stub".into(),
            })
        })
    }
}
