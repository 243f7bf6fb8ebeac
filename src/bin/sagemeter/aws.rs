//! The AWS configuration every subcommand starts from: the standard chain
//! (environment, shared config and credentials files, SSO, IMDS, ...), with
//! `--region` and `--profile` on top.

use crate::{CliError, GlobalArgs};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::SdkConfig;
use sagemeter::redact::error_chain;

/// The region used when neither `--region` nor the AWS configuration names one
/// (the Price List answers for every region from there).
pub const FALLBACK_REGION: &str = "us-east-1";

/// Loads the SDK configuration as the AWS CLI would: `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` (e.g. `AWS_ENDPOINT_URL_PRICING`) are honoured by the
/// clients built from it.
///
/// `--profile` takes the profile's credentials even when the environment has keys
/// (as the AWS CLI does); a profile that is in neither file, named by `--profile`
/// or by `AWS_PROFILE`, is a usage error (the SDK would fail later, with its reason
/// in a WARN only).
pub async fn load(global: &GlobalArgs) -> Result<SdkConfig, CliError> {
    warn_of_files_not_utf8();
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    } else if let Some(region) = region_past_empty_variables(global.profile.as_deref()).await {
        loader = loader.region(region);
    }
    if global.profile.is_none()
        && let Some(profile) = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty())
    {
        check_profile(&profile, &format!("AWS_PROFILE={profile}")).await?;
    }
    if let Some(profile) = &global.profile {
        check_profile(profile, &format!("--profile {profile}")).await?;
        loader = loader.profile_name(profile);
    }
    let mut config = loader.load().await;
    // An empty region (`AWS_REGION=`) is none: the fallback's.
    if config.region().is_some_and(|r| r.as_ref().is_empty()) {
        let mut builder = config.to_builder();
        builder.set_region(None);
        config = builder.build();
    }
    // The profile's own chain, not the default one (which takes the environment's
    // keys first). Built with the region (and FIPS and dual-stack settings) the
    // loader found: a profile that assumes a role calls STS, which needs a region.
    if let Some(profile) = &global.profile {
        let settings = ProviderConfig::default()
            .with_region(config.region().cloned())
            .with_use_fips(config.use_fips())
            .with_use_dual_stack(config.use_dual_stack());
        let credentials = ProfileFileCredentialsProvider::builder()
            .configure(&settings)
            .profile_name(profile)
            .build();
        config = config
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
    }
    // A region from the environment or a profile names URLs and cache files: one
    // that is no name (a path, spaces) is refused as --region would be. Any name
    // passes (`local`, as emulators use, too).
    if let Some(region) = config.region().filter(|_| global.region.is_none())
        && !is_region_name(region.as_ref())
    {
        return Err(CliError::Usage(format!(
            "the region of the AWS configuration (AWS_REGION, AWS_DEFAULT_REGION or the \
             profile's region), `{}`, is not a region name (lower-case letters, digits and \
             dashes, e.g. us-east-1); set it, or give --region",
            sagemeter::redact::printable(region.as_ref())
        )));
    }
    Ok(config)
}

/// The region, when `AWS_REGION` (or, without it, `AWS_DEFAULT_REGION`) is set but
/// empty: the SDK takes the empty value for a region and looks no further, so a
/// profile's region would be passed over for the fallback's. An empty variable is
/// an unset one here: the next variable, then the profile (`profile`, else
/// `AWS_PROFILE`'s or the default). `None` when no variable is empty, or nothing
/// names a region.
async fn region_past_empty_variables(profile: Option<&str>) -> Option<Region> {
    use aws_config::meta::region::ProvideRegion;
    let var = |name| std::env::var(name).ok().map(|v| v.trim().to_owned());
    let default_region = var("AWS_DEFAULT_REGION");
    let empty = match var("AWS_REGION") {
        Some(region) => region.is_empty(),
        None => default_region.as_deref() == Some(""),
    };
    if !empty {
        return None;
    }
    if let Some(region) = default_region.filter(|r| !r.is_empty()) {
        return Some(Region::new(region));
    }
    let mut provider = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = profile {
        provider = provider.profile_name(profile);
    }
    provider.build().region().await
}

/// Says, naming only its path, that the shared config or credentials file in use
/// (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/config` and
/// `~/.aws/credentials`) is not UTF-8 (a Latin-1 byte in a comment, a file
/// saved as UTF-16): the SDK reads it as empty, so its profiles and keys are not
/// found. The SDK's own warning prints the file's bytes, secret keys among them,
/// and is not shown ([`sagemeter::redact::may_log`]).
fn warn_of_files_not_utf8() {
    use std::path::PathBuf;
    // As the SDK finds its home: `HOME`, else `USERPROFILE` (Windows).
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from);
    for (variable, default) in [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    ] {
        // As the SDK reads the variable: a leading `~` is the home directory
        // (`~/.aws/ci` from a Dockerfile's ENV, which does not expand it); an
        // empty value is a path too (one no file has).
        let path = match std::env::var(variable) {
            Ok(path) => match (path.strip_prefix('~'), &home) {
                (Some(rest), Some(home))
                    if rest.is_empty() || rest.starts_with(std::path::is_separator) =>
                {
                    home.join(rest.trim_start_matches(std::path::is_separator))
                }
                _ => PathBuf::from(path),
            },
            Err(std::env::VarError::NotUnicode(path)) => PathBuf::from(path),
            Err(std::env::VarError::NotPresent) => match &home {
                Some(home) => home.join(".aws").join(default),
                None => continue,
            },
        };
        if let Ok(bytes) = std::fs::read(&path)
            && std::str::from_utf8(&bytes).is_err()
        {
            tracing::warn!(
                target: "sagemeter::cli",
                path = %path.display(),
                "the AWS {default} file is not UTF-8; the AWS SDK reads it as empty \
                 (its profiles and keys are not found): save it as UTF-8"
            );
        }
    }
}

/// The profile is in the shared config or credentials file; errors begin with
/// `given` (where the name came from).
async fn check_profile(name: &str, given: &str) -> Result<(), CliError> {
    use aws_types::os_shim_internal::{Env, Fs};
    // The default files: `~/.aws/config` and `credentials`, or as the environment says.
    let files = Default::default();
    let profiles = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| CliError::Usage(format!("{given}: {}", error_chain(&e))))?;
    match profiles.get_profile(name) {
        Some(_) => Ok(()),
        None => Err(CliError::Usage(format!(
            "{given}: no such profile in the AWS config or credentials file \
             (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)"
        ))),
    }
}

/// Like [`load`], with [`FALLBACK_REGION`] when no region is configured.
pub async fn load_with_fallback_region(global: &GlobalArgs) -> Result<SdkConfig, CliError> {
    let config = load(global).await?;
    if config.region().is_some() {
        return Ok(config);
    }
    Ok(config
        .to_builder()
        .region(Region::from_static(FALLBACK_REGION))
        .build())
}

/// The configured region, or [`FALLBACK_REGION`].
pub fn region(config: &SdkConfig) -> String {
    config
        .region()
        .map_or_else(|| FALLBACK_REGION.to_owned(), |r| r.to_string())
}

/// Lower-case letters, digits and dashes: a name that can be a host's or a file's.
fn is_region_name(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `--region`: a region code such as `us-east-1` (lower-case letters, digits, dashes).
pub fn parse_region(text: &str) -> Result<String, String> {
    let ok = !text.is_empty() && text.contains('-') && is_region_name(text);
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an AWS region code (expected something like us-east-1)"
        ))
    }
}
