//! `mde-relay serve`: the Azure Functions custom handler (see [`crate::handler`]).

use anyhow::Context;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (the Functions host sets FUNCTIONS_CUSTOMHANDLER_PORT).
    #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
    port: Option<u16>,
}

/// Runs `serve`.
pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let port = a.port.context(
        "no port: the Functions host sets `FUNCTIONS_CUSTOMHANDLER_PORT`; for a local run pass --port",
    )?;
    crate::handler::init_logging();
    // Settings are checked before listening, so a bad one stops start-up with its name.
    let prepared = crate::handler::prepare()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // After SIGTERM a non-zero code, so that a host still routing to this worker restarts it;
    // after Ctrl-C, 0 (see crate::handler::RESTART_EXIT_CODE).
    let how = rt.block_on(async {
        // RELAY_ES_INSTALL_TEMPLATES=true: the templates are in place before the first event.
        let sink = crate::sink::config::SinkConfig::from_env()?;
        crate::sink::es_templates::install_at_startup(&sink).await?;
        crate::handler::serve(port, prepared).await
    })?;
    Ok(ExitCode::from(how.exit_code()))
}
