//! `lupa`: the Lupa deployment system from a shell. Projects, deployments,
//! promotion, rollback, history and resolution on any store the library
//! opens (an SQLite file by default), and a guided demo.

mod args;
mod commands;
mod demo;
mod output;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use lupa_core::{Error, ErrorCode, redact_text};

use crate::args::{Cli, Command};
use crate::commands::{Failure, Report};
use crate::output::{ErrorDocument, Style, Ui, wants_colour};

/// The exit status of an error of the library, by its HTTP status.
fn exit_status(e: &Error) -> u8 {
    match e.http_status() {
        400..=499 => 3,
        503 => 4,
        _ => 1,
    }
}

const USAGE: u8 = 2;
const UNAVAILABLE: u8 = 4;

fn colour(stream_is_terminal: bool) -> bool {
    wants_colour(stream_is_terminal, std::env::var_os("NO_COLOR").as_deref(), std::env::var_os("TERM").as_deref())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(clap_error(&e)),
    };
    let ui = Ui { json: cli.global.json, colour: !cli.global.json && colour(std::io::stdout().is_terminal()) };
    if cli.global.verbose > 0 {
        start_log(cli.global.verbose);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return ExitCode::from(fail(
                &ui,
                cli.global.verbose,
                &Failure::Lupa(Error::new(ErrorCode::Internal, e.to_string())),
            ));
        }
    };
    let result = runtime.block_on(run(&cli, &ui));
    ExitCode::from(match result {
        Ok(report) => match print(&ui, &report) {
            Ok(()) if report.unavailable => UNAVAILABLE,
            Ok(()) => 0,
            Err(e) => fail(&ui, cli.global.verbose, &Failure::Output(e)),
        },
        Err(failure) => fail(&ui, cli.global.verbose, &failure),
    })
}

async fn run(cli: &Cli, ui: &Ui) -> Result<Report, Failure> {
    if let Command::Demo = cli.command {
        return Ok(Report { stdout: demo::run(ui).await?, ..Report::default() });
    }
    let lupa = commands::open(&cli.global).await?;
    let result = commands::run(&lupa, &cli.global, &cli.command, ui).await;
    lupa.close().await;
    result
}

fn print(ui: &Ui, report: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(report.stdout.as_bytes())?;
    out.flush()?;
    if !ui.json {
        let colour = colour(std::io::stderr().is_terminal());
        let label = Ui { json: false, colour }.paint("note:", Style::Yellow);
        let mut err = std::io::stderr().lock();
        for note in &report.notes {
            // A closed stderr loses the note, not the result.
            let _ = writeln!(err, "{label} {note}");
        }
    }
    Ok(())
}

/// Prints a failure to stderr and gives the exit status.
fn fail(ui: &Ui, verbose: u8, failure: &Failure) -> u8 {
    let (error, status) = match failure {
        Failure::Lupa(e) => (e.clone(), exit_status(e)),
        Failure::Usage(e) => (e.clone(), USAGE),
        // Nobody reads the rest of the output any more.
        Failure::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return 0,
        Failure::Output(e) => (Error::new(ErrorCode::Internal, format!("could not write the output: {e}")), 1),
    };
    // The library keeps secrets out of its messages; this is the second
    // line of defence.
    let message = redact_text(error.message());
    let text = if ui.json {
        serde_json::to_string_pretty(&ErrorDocument::of(error.code().as_str(), &message))
            .unwrap_or_else(|_| format!("{{\"error\": {{\"code\": \"{}\"}}}}", error.code().as_str()))
    } else {
        let colour = colour(std::io::stderr().is_terminal());
        format!("{} {}: {message}", Ui { json: false, colour }.paint("error:", Style::Red), error.code())
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
    // The library keeps the details of these two in its log only.
    let logged = matches!(error.code(), ErrorCode::Internal | ErrorCode::StorageUnavailable);
    if logged && verbose == 0 && !ui.json && !matches!(failure, Failure::Output(_)) {
        let _ = writeln!(err, "hint: -v prints the library's log, which has the details");
    }
    status
}

/// Help and version go to stdout (exit 0); usage errors to stderr, with any
/// secret the command line held hidden (exit 2).
fn clap_error(e: &clap::Error) -> u8 {
    if !e.use_stderr() {
        let _ = e.print();
        return u8::try_from(e.exit_code()).unwrap_or(0);
    }
    let rendered = e.render();
    let text = if colour(std::io::stderr().is_terminal()) { rendered.ansi().to_string() } else { rendered.to_string() };
    let _ = std::io::stderr().lock().write_all(redact_text(&text).as_bytes());
    USAGE
}

/// The library's log on stderr, every line redacted.
fn start_log(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    struct Redacted;
    impl Write for Redacted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::io::stderr().lock().write_all(redact_text(&String::from_utf8_lossy(buf)).as_bytes())?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            std::io::stderr().flush()
        }
    }

    let (ours, others) =
        if verbose == 1 { (LevelFilter::INFO, LevelFilter::WARN) } else { (LevelFilter::TRACE, LevelFilter::DEBUG) };
    let filter = Targets::new().with_target("lupa_core", ours).with_default(others);
    let layer = tracing_subscriber::fmt::layer().with_writer(|| Redacted).with_ansi(false);
    let _ = tracing_subscriber::registry().with(layer).with(filter).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_the_http_status() {
        let status = |code| exit_status(&Error::new(code, "x"));
        assert_eq!(status(ErrorCode::InvalidApiKey), 3);
        assert_eq!(status(ErrorCode::ProjectNotFound), 3);
        assert_eq!(status(ErrorCode::NoRollbackTarget), 3);
        assert_eq!(status(ErrorCode::InvalidArgument), 3);
        assert_eq!(status(ErrorCode::StorageUnavailable), 4);
        assert_eq!(status(ErrorCode::Internal), 1);
    }
}
