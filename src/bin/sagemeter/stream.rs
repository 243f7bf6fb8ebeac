//! `sagemeter invoke --stream` and `--async`: one call each, parts printed as they
//! arrive (streams), then the receipt.

use crate::CliError;
use crate::interrupt::{self, Interrupts};
use crate::invoke::{ErrorLine, InvokeArgs, ReceiptLine};
use crate::output::{json_line, usd};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use sagemeter::{Client, Cost};
use serde::Serialize;
use std::io::Write;

/// Streams one response: payload parts to `out` as they arrive (not with --json),
/// then the receipt. An interrupt ends the stream (the receipt covers it so far).
/// A failed write (stdout gone, `| head`) ends the output, not the stream: it is
/// read to its end and its receipt made whole before the write's error is returned.
pub async fn run_stream(
    client: &Client,
    args: &InvokeArgs,
    body: Vec<u8>,
    interrupts: &mut Interrupts,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut request = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(&args.endpoint)
        .content_type(&args.content_type)
        .body(Blob::new(body));
    if let Some(accept) = &args.accept {
        request = request.accept(accept);
    }
    let sent = tokio::select! {
        sent = request.send() => sent,
        code = interrupts.next() => {
            // Dropped: a call already sent gets its cancelled receipt (ledger, totals).
            return Err(interrupted(code, "the call was cancelled before its stream began"));
        }
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => return failed(args, out, e),
    };
    let receipt = response.receipt();
    let mut stream_error = None;
    let mut stopped_by = None;
    let mut text = crate::output::ModelText::for_stdout();
    // The first failed write: nothing more is written after it. The stream is still
    // read to its end, so that its receipt (ledger, totals) covers all of it, as a
    // plain invoke's calls in flight finish; dropped here, it would be a `cancelled`
    // receipt billing only the time until the write failed.
    let mut write_failed: Option<std::io::Error> = None;
    loop {
        let event = tokio::select! {
            event = response.body.recv() => event,
            code = interrupts.next() => {
                stopped_by = Some(code);
                break;
            }
        };
        match event {
            Ok(Some(ResponseStream::PayloadPart(part))) => {
                if !args.json
                    && write_failed.is_none()
                    && let Some(bytes) = part.bytes()
                    && let Err(e) = text.write(out, bytes.as_ref()).and_then(|()| out.flush())
                {
                    write_failed = Some(e);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                stream_error = Some(crate::failure::describe_stream_error(&e));
                break;
            }
        }
    }
    if write_failed.is_none()
        && let Err(e) = text.finish(out)
    {
        write_failed = Some(e);
    }
    drop(response);
    let cost = receipt.wait().await;
    // Stopped or failed after the model's `[DONE]`: the answer was whole (the
    // receipt says `ok`, billed to `[DONE]`).
    let whole = cost
        .as_ref()
        .is_some_and(|c| c.usage.outcome == sagemeter::usage::Outcome::Ok);
    // Failed after `[DONE]` (a container that resets its connection once it has
    // written it): printed as the whole call it was, the failure said on stderr.
    let stream_error = match stream_error {
        Some(error) if whole => {
            crate::output::eprint(&format!(
                "note: the response stream failed after the model's [DONE] ({error}); \
                 the answer was whole, billed to [DONE]"
            ));
            None
        }
        Some(error) => Some(format!(
            "the response stream failed ({error}); the receipt covers it up to the failure"
        )),
        None => None,
    };
    let printed = match write_failed {
        // main takes a reader that left (BrokenPipe) for exit 0.
        Some(e) => Err(e.into()),
        None => write_receipt(args, out, cost.as_ref(), stream_error.as_deref()),
    };
    // As for a plain invoke: an interrupt wins, then the call's failure.
    if let Some(code) = stopped_by {
        let what = if whole {
            "the stream's end was not waited for; the model's answer was whole"
        } else {
            "the stream was cut short"
        };
        return Err(interrupted(code, what));
    }
    match stream_error {
        Some(message) => Err(CliError::failed(message)),
        None => printed,
    }
}

fn interrupted(code: u8, what: &str) -> CliError {
    CliError::Interrupted {
        code,
        message: format!("interrupted by {}: {what}", interrupt::signal_name(code)),
    }
}

/// Submits one asynchronous inference and prints the submission receipt.
pub async fn run_async(
    client: &Client,
    args: &InvokeArgs,
    body: Vec<u8>,
    interrupts: &mut Interrupts,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut request = client
        .invoke_endpoint_async()
        .endpoint_name(&args.endpoint)
        .content_type(&args.content_type);
    if let Some(accept) = &args.accept {
        request = request.accept(accept);
    }
    match &args.input_location {
        Some(location) => {
            request = request.input_location(location);
            if let Some(bytes) = args.input_bytes {
                request = request.input_bytes(bytes);
            }
        }
        None => request = request.body(Blob::new(body)),
    }
    let sent = tokio::select! {
        sent = request.send() => sent,
        code = interrupts.next() => {
            // Dropped before SageMaker answered: whether it was queued is unknown,
            // and the library makes no receipt of it. Once accepted, an interrupt
            // waits for its receipt to be written.
            return Err(interrupted(
                code,
                "the submission was cancelled before SageMaker answered: it may have been \
                 queued all the same, and has no receipt",
            ));
        }
    };
    let submitted = match sent {
        Ok(submitted) => submitted,
        Err(e) => return failed(args, out, e),
    };
    // The receipt's reason names the library's setter; say the flag.
    if args.input_location.is_some() && args.input_bytes.is_none() {
        crate::output::eprint(
            "note: data in is unpriced: the input is in S3; --input-bytes bills its size",
        );
    }
    let submission = Submission {
        inference_id: submitted.inference_id(),
        output_location: submitted.output_location(),
        failure_location: submitted.failure_location(),
    };
    if args.json {
        json_line(
            out,
            &AsyncReceiptLine {
                kind: "receipt",
                call: 1,
                submission,
                cost: submitted.cost(),
            },
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "inference {} queued; output will land at {}{}",
        submission.inference_id.unwrap_or("-"),
        submission.output_location.unwrap_or("-"),
        submission
            .failure_location
            .map_or_else(String::new, |at| format!(", a failure at {at}"))
    )?;
    write_receipt(args, out, Some(submitted.cost()), None)
}

/// Where an asynchronous inference's result will be: what a `--json` reader needs
/// to fetch it (the text output says it in words).
#[derive(Serialize, Clone, Copy)]
struct Submission<'a> {
    inference_id: Option<&'a str>,
    output_location: Option<&'a str>,
    failure_location: Option<&'a str>,
}

/// `--async --json`: the submission receipt, with where the output will land.
#[derive(Serialize)]
struct AsyncReceiptLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    call: u32,
    submission: Submission<'a>,
    #[serde(flatten)]
    cost: &'a Cost,
}

/// The call's receipt: a `receipt` line, or with `failure` an `error` line carrying
/// it (`#1 FAILED` in text).
fn write_receipt(
    args: &InvokeArgs,
    out: &mut dyn Write,
    cost: Option<&Cost>,
    failure: Option<&str>,
) -> Result<(), CliError> {
    let Some(cost) = cost else {
        return Err(CliError::failed("the call ended without a receipt"));
    };
    if args.json {
        match failure {
            Some(error) => json_line(
                out,
                &ErrorLine {
                    kind: "error",
                    call: 1,
                    error: error.to_owned(),
                    receipt: Some(cost),
                },
            )?,
            None => json_line(
                out,
                &ReceiptLine {
                    kind: "receipt",
                    call: 1,
                    cost,
                },
            )?,
        }
    } else {
        writeln!(out)?;
        let failed = if failure.is_some() { "FAILED " } else { "" };
        writeln!(out, "#1    {failed}{}", crate::output::receipt_line(cost))?;
        for line in &cost.lines {
            let amount = line.cost_usd().map_or_else(|| "unpriced".to_owned(), usd);
            writeln!(
                out,
                "      {:<14} {:>20} {:<14} {}",
                line.item.as_str(),
                line.quantity,
                crate::output::quantity_unit(line.unit),
                amount
            )?;
        }
        // A note can quote a SKU or an AWS answer: no control character of its
        // reaches the terminal.
        for note in &cost.notes {
            writeln!(out, "      note: {}", sagemeter::redact::printable(note))?;
        }
    }
    Ok(())
}

fn failed(args: &InvokeArgs, out: &mut dyn Write, e: sagemeter::Error) -> Result<(), CliError> {
    // A stream's that reached the model, or a submission's SageMaker accepted.
    let receipt = e.cost();
    let message = crate::failure::describe(&e);
    // Whether the receipt could be written or not (a reader that left, `| head`),
    // the call's failure is the command's: it is returned, not the write's error.
    let _ = match receipt {
        // Billed (the model ran, or the input was queued): its receipt, as for a
        // call that did not fail.
        Some(cost) => write_receipt(args, out, Some(cost), Some(&message)),
        None if args.json => json_line(
            out,
            &ErrorLine {
                kind: "error",
                call: 1,
                error: message.clone(),
                receipt: None,
            },
        )
        .map_err(CliError::from),
        // Refused (a budget, no credentials to sign it): never sent, as a plain
        // call refused before sending says.
        None if e.refused_before_sending() => {
            writeln!(out, "\n#1    REFUSED (not sent)").map_err(CliError::from)
        }
        None => writeln!(out, "\n#1    FAILED (not billed)").map_err(CliError::from),
    };
    match e {
        // Refused before sending (e.g. an inline body over the 128 KB an asynchronous
        // request may carry): an argument problem, as for a plain invoke.
        sagemeter::Error::InvalidRequest(message) => Err(CliError::Usage(message)),
        _ => Err(CliError::failed(message)),
    }
}
