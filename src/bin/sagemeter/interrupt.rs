//! SIGINT and SIGTERM (Ctrl-C elsewhere) while `invoke` calls: the first stops new
//! calls, the next cancels those in flight; receipts, summary and ledger follow.

/// The interrupts of this process, from when [`Interrupts::listen`] is called.
pub struct Interrupts {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Interrupts {
    /// Catches SIGINT and SIGTERM from now on (if it cannot, they end the process
    /// as before, with a warning).
    pub fn listen() -> Interrupts {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
            match signals {
                Ok(signals) => Interrupts {
                    signals: Some(signals),
                },
                Err(e) => {
                    tracing::warn!(target: "sagemeter::cli", error = %e,
                        "cannot catch SIGINT/SIGTERM: an interrupt ends the run at once");
                    Interrupts { signals: None }
                }
            }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    /// Waits for the next interrupt; its exit code, 130 (SIGINT) or 143 (SIGTERM).
    pub async fn next(&mut self) -> u8 {
        #[cfg(unix)]
        {
            let Some((int, term)) = &mut self.signals else {
                return std::future::pending().await;
            };
            tokio::select! {
                Some(()) = int.recv() => 130,
                Some(()) = term.recv() => 143,
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => 130,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// The signal behind an exit code of [`Interrupts::next`].
pub fn signal_name(code: u8) -> &'static str {
    match code {
        143 => "SIGTERM",
        _ => "SIGINT",
    }
}
