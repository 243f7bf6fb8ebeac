//! Reading every page of a paged answer, once.

use super::error::AccountError;
use std::collections::HashSet;

/// The page tokens of one paged read: what to send next, and every token sent,
/// so that a token answered again, even pages later (A, B, A), stops the read
/// instead of asking for the same pages without end.
#[derive(Debug, Default)]
pub(super) struct PageTokens {
    next: Option<String>,
    sent: HashSet<String>,
}

impl PageTokens {
    /// The token to send with the next request: none for the first page.
    pub(super) fn send_next(&mut self) -> Option<String> {
        let token = self.next.take();
        if let Some(token) = &token {
            self.sent.insert(token.clone());
        }
        token
    }

    /// Takes an answer's next token: true to read on, false after the last page,
    /// and [`AccountError::RepeatedPageToken`] naming `operation` for a token sent
    /// before.
    pub(super) fn read_on(
        &mut self,
        next: Option<&str>,
        operation: &'static str,
    ) -> Result<bool, AccountError> {
        match next {
            Some(token) if self.sent.contains(token) => {
                Err(AccountError::RepeatedPageToken { operation })
            }
            Some(token) if !token.is_empty() => {
                self.next = Some(token.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
