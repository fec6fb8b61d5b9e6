//! The `main` the examples with `--help` and typed flags share: parse, print the usage on
//! `--help` (exit 0) or after a flag error (exit 2), run, and print a run's error (exit 1).

use std::process::ExitCode;

/// Runs `run` on the parsed flags (`Ok(None)` means `--help`), with the exit codes above.
pub fn main_with<A>(
    usage: &str,
    parsed: Result<Option<A>, String>,
    run: impl FnOnce(&A) -> Result<(), Box<dyn std::error::Error>>,
) -> ExitCode {
    let args = match parsed {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
