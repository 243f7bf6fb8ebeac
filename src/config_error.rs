//! [`ConfigError`]: an option that cannot work, found when a builder checks it.

use std::borrow::Cow;
use std::fmt;

/// A configuration option that cannot work: which option, what is wrong with it,
/// and (when there is more to say) what to do. Builders return it, wrapped in
/// [`Error::Config`](crate::Error::Config), from `build()` and from their
/// validating setters.
///
/// Displays as `problem` alone, or `problem: hint`:
///
/// ```
/// let sdk_config = aws_types::SdkConfig::builder()
///     .behavior_version(aws_config::BehaviorVersion::latest())
///     .build();
/// let err = sagemeter::Client::builder(&sdk_config).build().unwrap_err();
/// let sagemeter::Error::Config(config) = &err else { panic!("{err}") };
/// assert_eq!(config.option, "ClientBuilder::region");
/// assert_eq!(
///     err.to_string(),
///     "invalid configuration: no region: set one in the AWS config (AWS_REGION) or \
///      with ClientBuilder::region"
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The option at fault, named as it is set: a builder method
    /// (`ClientBuilder::price_override`), a constructor (`Budget::enforce`) or a
    /// field (`UsageCharges::usd_per_1000_calls`).
    pub option: &'static str,
    /// What is wrong with it.
    pub problem: Cow<'static, str>,
    /// What to do about it, when the problem does not say already.
    pub hint: Option<Cow<'static, str>>,
}

impl ConfigError {
    /// A problem with `option`.
    pub(crate) fn new(option: &'static str, problem: impl Into<Cow<'static, str>>) -> Self {
        ConfigError {
            option,
            problem: problem.into(),
            hint: None,
        }
    }

    /// What to do about it.
    pub(crate) fn hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same problem, found in `what` (e.g. the usage charges of one endpoint).
    pub(crate) fn within(mut self, what: impl fmt::Display) -> Self {
        self.problem = format!("{what}: {}", self.problem).into();
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)?;
        if let Some(hint) = &self.hint {
            write!(f, ": {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::ConfigError;

    #[test]
    fn displays_the_problem_then_what_to_do() {
        let err = ConfigError::new(
            "ClientBuilder::discovery_refresh",
            "must be longer than zero",
        );
        assert_eq!(err.to_string(), "must be longer than zero");
        let err = ConfigError::new("ClientBuilder::region", "no region")
            .hint("set one with ClientBuilder::region");
        assert_eq!(
            err.to_string(),
            "no region: set one with ClientBuilder::region"
        );
        let err = ConfigError::new("UsageCharges::alone", "needs a price")
            .within("usage charges of `rt`");
        assert_eq!(err.option, "UsageCharges::alone");
        assert_eq!(err.to_string(), "usage charges of `rt`: needs a price");
    }
}
