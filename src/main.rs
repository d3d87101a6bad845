//! The `mde-relay` binary: see `mde-relay --help`.

fn main() -> std::process::ExitCode {
    mde_relay::cli::main()
}
