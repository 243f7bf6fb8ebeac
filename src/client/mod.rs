//! Client (stub).
/// Client (stub).
#[derive(Debug, Clone)]
pub struct Client {}
impl Client {
    /// New.
    pub fn new(_c: &aws_types::SdkConfig) -> Self { Client {} }
}
/// Builder (stub).
pub struct ClientBuilder {}
/// Meter (stub).
pub struct Meter {}
/// Meter builder (stub).
pub struct MeterBuilder {}
/// Metered (stub).
pub struct Metered<T> { _t: T }
/// Ext (stub).
pub trait SendMeteredExt {}
