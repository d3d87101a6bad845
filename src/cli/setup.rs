//! `mde-relay setup elasticsearch`: installs the index templates of the Elasticsearch /
//! OpenSearch sink ([`crate::sink::es_templates`]).

use crate::config::Settings;
use crate::sink::elasticsearch::EsConfig;
use crate::sink::es_templates::{install, templates, Flavor, TemplateOptions};
use crate::sink::retry::RetryPolicy;
use clap::{Args, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Arguments of `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(subcommand)]
    target: SetupTarget,
}

#[derive(Debug, Subcommand)]
enum SetupTarget {
    /// Install the index templates for the elasticsearch sink (Elasticsearch 7.8+ or OpenSearch
    /// 2.7+; the engine is detected). Idempotent. Authentication comes from RELAY_ES_API_KEY or
    /// RELAY_ES_USERNAME/RELAY_ES_PASSWORD.
    Elasticsearch(EsSetupArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Engine {
    Elasticsearch,
    Opensearch,
}

#[derive(Debug, Args)]
struct EsSetupArgs {
    /// Cluster URL (default: RELAY_ES_URL).
    #[arg(long, env = "RELAY_ES_URL")]
    es_url: Option<String>,
    /// Index or data stream, `{table}` standing for the table (default: RELAY_ES_INDEX, else
    /// mde-relay-{table}).
    #[arg(long, env = "RELAY_ES_INDEX")]
    es_index: Option<String>,
    /// Make the indices data streams (the sink writes with `create`, which they accept).
    #[arg(long)]
    data_stream: bool,
    /// Elasticsearch ILM policy for the indices (`index.lifecycle.name`). On OpenSearch, give
    /// the ISM policy an `ism_template` instead (docs/sinks.md).
    #[arg(long)]
    ilm_policy: Option<String>,
    /// Print the templates as JSON for this engine instead of installing them (no URL needed).
    #[arg(long, value_enum)]
    print: Option<Engine>,
}

/// Runs `setup`.
pub fn run(a: SetupArgs) -> anyhow::Result<ExitCode> {
    let SetupTarget::Elasticsearch(a) = a.target;
    let opts = TemplateOptions {
        data_stream: a.data_stream,
        ilm_policy: a.ilm_policy.clone(),
    };
    let index = a
        .es_index
        .clone()
        .unwrap_or_else(|| "mde-relay-{table}".into());
    if let Some(engine) = a.print {
        let flavor = match engine {
            Engine::Elasticsearch => Flavor::Elasticsearch,
            Engine::Opensearch => Flavor::OpenSearch,
        };
        let t = templates(&index, flavor, &opts);
        let out = serde_json::json!({
            "component_templates": t.components.iter().map(|(n, b)| serde_json::json!({"name": n, "body": b})).collect::<Vec<_>>(),
            "index_templates": t.index_templates.iter().map(|(n, b)| serde_json::json!({"name": n, "body": b})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (url, index_flag) = (a.es_url.clone(), a.es_index.clone());
    let settings = Settings::new(move |k| match k {
        "RELAY_ES_URL" => url.clone(),
        "RELAY_ES_INDEX" => index_flag.clone(),
        other => crate::config::env(other),
    });
    let config = EsConfig::from_settings(&settings, 1, 1, RetryPolicy::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let done = rt.block_on(install(&config, &opts))?;
    println!("{done}");
    println!(
        "indices created from now on matching {} get these mappings; existing ones keep theirs until they roll over",
        config.index.replace("{table}", "*")
    );
    Ok(ExitCode::SUCCESS)
}
