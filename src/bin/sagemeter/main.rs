//! `sagemeter` command-line tool (temporary entry point of the `compare` branch: the
//! real one plugs `compare::run` in the same way).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod compare;

#[derive(Parser, Debug)]
#[command(name = "sagemeter", version, about = "What SageMaker calls cost")]
struct Cli {
    /// AWS region whose prices are used.
    #[arg(long, global = true, default_value = "us-east-1")]
    region: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare billing plans for the same work, with break-even points.
    Compare(compare::CompareArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let prices = sagemeter::pricing::Snapshot::bundled();
    let mut stdout = std::io::stdout().lock();
    let result = match cli.command {
        Command::Compare(args) => compare::run(args, &prices, &cli.region, &mut stdout).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
