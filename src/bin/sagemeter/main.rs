//! `sagemeter`: call SageMaker endpoints and see what each call cost; look up prices,
//! report on ledgers, compare plans, and see what endpoints burn.
//!
//! ```text
//! sagemeter invoke <ENDPOINT> --body <JSON|@FILE|-> [-n N] [--concurrency C] [--json]
//! sagemeter price <INSTANCE_TYPE|async:TYPE|serverless:MB|provisioned:MB|data-in|data-out|storage|...> [--json]
//! sagemeter price <WHAT> --history | --trend <FAMILY> [--since YYYY-MM-DD] [--chart F]
//! sagemeter report <LEDGER|DIR>... [--by endpoint|variant|...|day|hour] [--json] [--chart F]
//! sagemeter compare (--calls N | --calls-per-day N | --from-ledger LEDGER) [plans ...] [--json]
//! sagemeter fleet init --table NAME | fleet status --table NAME [--json]   (feature `fleet`)
//! sagemeter endpoints [--window 24h|7d|30d] [--json]                      (feature `account`)
//! sagemeter reconcile <LEDGER>... [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--group-by usage-type|tag:KEY] [--json]
//!                                                                          (feature `account`)
//! sagemeter ledger convert <LEDGER>... --to parquet <DIR>                (feature `parquet`)
//! ```
//!
//! Every command that calls AWS uses the standard AWS configuration chain
//! (environment, shared config and credentials files, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_PRICING`, ...). `--region` and `--profile`
//! override it for one run.
//!
//! Exit codes: 0 success; 1 a command failed (`error: …` on stderr); 2 invalid
//! arguments (nothing was sent); 130/143 `invoke` interrupted (SIGINT/SIGTERM), its
//! ledger missing no receipt (1 if it is).
//!
//! Layout: one module per subcommand (`invoke`, `price`, `report`, `compare`, …),
//! each with a `#[derive(clap::Args)]` struct and an async `run(args, .., out)`
//! writing to any `io::Write`; `aws` loads the SDK configuration; `output` holds the
//! shared formatting and statistics. A new subcommand adds a module, a variant of
//! [`Command`] and an arm in [`run`].

mod aws;
mod compare;
#[cfg(feature = "account")]
mod endpoints;
mod failure;
#[cfg(feature = "fleet")]
mod fleet;
mod interrupt;
mod invoke;
#[cfg(feature = "parquet")]
mod ledger;
mod output;
mod price;
mod price_history;
#[cfg(feature = "account")]
mod reconcile;
mod report;
mod stream;
/// The test build's global allocator, counting what each thread holds (the library's).
#[cfg(test)]
#[path = "../../test_alloc.rs"]
mod test_alloc;

use clap::{Parser, Subcommand};
use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// What SageMaker endpoint calls cost, call by call.
#[derive(Parser, Debug)]
#[command(name = "sagemeter", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand understands, listed under their own heading in each
/// subcommand's help.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// AWS region (default: from the AWS configuration; else us-east-1, except for
    /// `invoke`, which calls an endpoint and needs its region said).
    #[arg(long, global = true, value_name = "REGION", value_parser = aws::parse_region)]
    pub region: Option<String>,
    /// Named profile of the shared AWS config/credentials files (default: AWS_PROFILE);
    /// its credentials win over the environment's.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Show the per-call INFO cost log lines (target `sagemeter`) on stderr.
    /// `RUST_LOG` sets the log filter in general (default `warn`).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

// Parsed once per run: a large variant (CompareArgs is) costs nothing worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Call an endpoint (InvokeEndpoint) N times and print each call's cost receipt
    /// and a summary.
    Invoke(invoke::InvokeArgs),
    /// Look up an on-demand rate: an instance type, a serverless memory size,
    /// provisioned concurrency, data processed or ML storage.
    Price(price::PriceArgs),
    /// Compare billing plans for the same work, with break-even points.
    Compare(compare::CompareArgs),
    /// Summarise a ledger: where the money went, by endpoint, variant, tag or time.
    Report(report::ReportArgs),
    /// The fleet table shared by every process's totals and budgets: make it, or
    /// see where each scope stands.
    #[cfg(feature = "fleet")]
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Every endpoint of the account: what it burns per hour, its invocations
    /// (CloudWatch), idle and underused ones.
    #[cfg(feature = "account")]
    Endpoints(endpoints::EndpointsArgs),
    /// Ledgers against the bill (Cost Explorer), day by day, the difference explained.
    #[cfg(feature = "account")]
    Reconcile(reconcile::ReconcileArgs),
    /// Ledger files: convert JSON Lines ledgers to Parquet.
    #[cfg(feature = "parquet")]
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
}

/// Why a command failed, and so which exit code it gets.
#[derive(Debug)]
pub enum CliError {
    /// The arguments cannot work (exit 2, like clap's own usage errors). Nothing was sent.
    Usage(String),
    /// The command ran and failed (exit 1).
    Failed(BoxError),
    /// Stopped by SIGINT (exit 130) or SIGTERM (143), after its summary and shutdown.
    Interrupted {
        /// 130 or 143.
        code: u8,
        /// What was left undone.
        message: String,
    },
}

/// Any error, boxed (what subcommands return).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl CliError {
    /// A failure with a plain message.
    pub fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into().into())
    }

    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
            CliError::Interrupted { code, .. } => *code,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(message) => f.write_str(message),
            // The whole chain: SDK errors keep the useful part in their sources.
            // The library's advice to set a price override is for programs: the CLI
            // says what its user can do.
            CliError::Failed(error) => f.write_str(&output::for_cli(
                &sagemeter::redact::error_chain(error.as_ref()),
            )),
            CliError::Interrupted { message, .. } => f.write_str(message),
        }
    }
}

impl From<BoxError> for CliError {
    fn from(error: BoxError) -> Self {
        CliError::Failed(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::Failed(Box::new(error))
    }
}

/// Logs to stderr: `RUST_LOG` (default `warn`), plus `sagemeter=info` with `-v`;
/// never the SDK's events that print payloads or credentials
/// ([`sagemeter::redact::may_log`]).
fn init_tracing(verbose: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Without a configured region the SDK asks the EC2 instance metadata service, and
    // warns when there is none; the CLI then uses us-east-1 (`price`) or says what to
    // set (`invoke`), so that warning is noise. An empty or blank RUST_LOG is an
    // unset one (as an empty AWS_REGION is): parsed, it would be a filter that
    // turns every line off, warnings too.
    let default = || EnvFilter::new("warn,aws_config::imds=error");
    let mut filter = match std::env::var_os(EnvFilter::DEFAULT_ENV) {
        Some(value) if value.to_str().is_some_and(|v| v.trim().is_empty()) => default(),
        _ => EnvFilter::try_from_default_env().unwrap_or_else(|_| default()),
    };
    if verbose {
        filter = filter.add_directive("sagemeter=info".parse().expect("a valid directive"));
    }
    // A filter of its own, not a directive: a more specific RUST_LOG directive
    // (`aws_smithy_runtime::client::orchestrator=trace`) would win over one.
    let no_payloads = tracing_subscriber::filter::filter_fn(|meta| {
        sagemeter::redact::may_log(meta.target(), *meta.level())
    });
    let _ = tracing_subscriber::registry()
        .with(no_payloads)
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(true),
        )
        .try_init();
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Invoke(args) => invoke::run(args, &cli.global, &mut out).await,
        Command::Price(args) => price::run(args, &cli.global, &mut out).await,
        Command::Report(args) => report::run(args, &mut out),
        #[cfg(feature = "fleet")]
        Command::Fleet(command) => fleet::run(command, &cli.global, &mut out).await,
        #[cfg(feature = "account")]
        Command::Endpoints(args) => endpoints::run(args, &cli.global, &mut out).await,
        #[cfg(feature = "account")]
        Command::Reconcile(args) => reconcile::run(args, &cli.global, &mut out).await,
        #[cfg(feature = "parquet")]
        Command::Ledger(command) => ledger::run(command, &mut out),
        Command::Compare(args) => {
            let sdk_config = aws::load_with_fallback_region(&cli.global).await?;
            let prices = sagemeter::pricing::default_price_source(&sdk_config);
            let region = aws::region(&sdk_config);
            let stated = cli.global.region.as_deref();
            compare::run(args, &prices, &sdk_config, stated, &region, &mut out).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors: message on stderr, exit 2, nothing sent
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::eprint(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `sagemeter ... | head`: the reader left; not an error worth a message.
        Err(CliError::Failed(e))
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            output::eprint(&format!("error: {e}"));
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_lists_the_global_options_under_their_own_heading() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        cli.build();
        let mut commands: Vec<clap::Command> = vec![cli.clone()];
        let mut checked = 0;
        while let Some(mut command) = commands.pop() {
            if command.get_name() == "help" {
                continue;
            }
            commands.extend(command.get_subcommands().cloned());
            let help = command.render_help().to_string();
            let (own, global) = help
                .split_once("\nGlobal options:\n")
                .unwrap_or_else(|| panic!("{}: no global heading:\n{help}", command.get_name()));
            for flag in ["--region <REGION>", "--profile <NAME>", "-v, --verbose"] {
                assert!(global.contains(flag), "{}: {flag}", command.get_name());
                assert!(!own.contains(flag), "{}: {flag}", command.get_name());
            }
            checked += 1;
        }
        // The top level, its commands, and the fleet's and the ledger's own.
        assert!(checked >= 8, "{checked}");
    }

    #[test]
    fn a_negative_number_is_read_as_a_value_and_refused_by_its_range() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut args = vec!["sagemeter", "invoke", "e", "--body", "{}"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        // Not "unexpected argument '-1' found; tip: use '-- -1'".
        let err = parse(&["-n", "-1"]).unwrap_err();
        assert!(
            err.contains("invalid value '-1' for '--calls <N>': -1 is not in 1..="),
            "{err}"
        );
        let err = parse(&["--ledger", "d/", "--ledger-roll-bytes", "-5"]).unwrap_err();
        assert!(
            err.contains("invalid value '-5' for '--ledger-roll-bytes <BYTES>'"),
            "{err}"
        );
        #[cfg(feature = "fleet")]
        {
            parse(&["--fleet-table", "t", "--lease-percent", "5%"]).unwrap();
            let err = parse(&["--fleet-table", "t", "--lease-percent", "-5"]).unwrap_err();
            assert!(
                err.contains("not a whole percentage from 1 to 100"),
                "{err}"
            );
        }
    }
}
