//! Billing (stub).
/// Receipt (stub).
#[derive(Debug, Clone)]
pub struct Cost {}
impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("cost") }
}
