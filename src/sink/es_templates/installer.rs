//! Installing the templates: detecting the engine behind `RELAY_ES_URL` and PUTting each
//! template (idempotent; a template already at [`TEMPLATES_VERSION`] is counted as unchanged).

use super::*;
use crate::sink::answer;

/// What [`install`] did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The engine found.
    pub engine: Engine,
    /// Component templates PUT.
    pub components: usize,
    /// Index templates PUT.
    pub index_templates: usize,
    /// Of those, how many already existed with the same `_meta.version` (unchanged).
    pub unchanged: usize,
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} component template(s) and {} index template(s) installed ({} were already at version {TEMPLATES_VERSION})",
            self.engine, self.components, self.index_templates, self.unchanged
        )
    }
}

/// A small client for the few template calls (the sink's transport is for `_bulk`). Its
/// answers are read and scrubbed like the sink's ([`answer`]): the cluster is not trusted to end
/// a body or to keep the request's credentials out of an error page.
struct Client {
    http: reqwest::Client,
    base: url::Url,
    auth: Option<HeaderValue>,
    /// What [`answer::scrub`] removes from messages built from an answer.
    secrets: Vec<String>,
}

impl Client {
    fn new(c: &EsConfig) -> Result<Client, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ConfigError::new("RELAY_ES_URL", format!("HTTP client: {e}")))?;
        let auth = auth_header(&c.auth)?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(a) = &auth {
            headers.insert(AUTHORIZATION, a.clone());
        }
        Ok(Client {
            http,
            base: c.url.clone(),
            auth,
            secrets: answer::secrets_of(&headers),
        })
    }

    fn url(&self, path: &str) -> url::Url {
        let mut u = self.base.clone();
        {
            let mut segs = u.path_segments_mut().expect("checked when configured");
            segs.pop_if_empty();
            for p in path.split('/').filter(|p| !p.is_empty()) {
                segs.push(p);
            }
        }
        u
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut r = self.http.request(method.clone(), self.url(path));
        if let Some(a) = &self.auth {
            r = r.header(AUTHORIZATION, a.clone());
        }
        if let Some(b) = body {
            r = r
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b)?);
        }
        // Without the URL: RELAY_ES_URL may carry credentials (`https://user:pass@host`).
        let resp = r
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.without_url()))
            .with_context(|| format!("{method} {path} on RELAY_ES_URL"))?;
        let status = resp.status();
        let max = if status.is_success() {
            answer::MAX_OK_BODY
        } else {
            answer::MAX_ERROR_BODY
        };
        let status = status.as_u16();
        let bytes = answer::read_bounded(resp, max).await;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }
}

/// The engine's error in an answer, scrubbed of `secrets` and cut short ([`answer::scrub`]).
pub(super) fn error_text(status: u16, v: &Value, secrets: &[String]) -> String {
    let e = &v["error"];
    let hint = match status {
        401 => "; check RELAY_ES_API_KEY (or RELAY_ES_USERNAME/RELAY_ES_PASSWORD)",
        403 => "; the key or user needs the manage_index_templates cluster privilege",
        _ => "",
    };
    let what = match (e["type"].as_str(), e["reason"].as_str()) {
        (Some(t), r) => format!("{t}: {}", r.unwrap_or("")),
        _ => v
            .to_string()
            .chars()
            .take(answer::MAX_BODY_EXCERPT)
            .collect(),
    };
    format!("{status} ({}){hint}", answer::scrub(&what, secrets))
}

/// Asks the cluster which engine it is.
pub async fn detect(c: &EsConfig) -> anyhow::Result<Engine> {
    let client = Client::new(c)?;
    detect_with(&client).await
}

async fn detect_with(client: &Client) -> anyhow::Result<Engine> {
    let (status, root) = client.send(reqwest::Method::GET, "/", None).await?;
    if status != 200 {
        bail!(
            "GET / on RELAY_ES_URL answered {}",
            error_text(status, &root, &client.secrets)
        );
    }
    Engine::from_root(&root)
}

/// Installs the templates for `c.index` (idempotent: PUT replaces a template by the same one).
/// Existing indices keep their mappings; the templates apply to indices created afterwards.
pub async fn install(c: &EsConfig, opts: &TemplateOptions) -> anyhow::Result<Installed> {
    let client = Client::new(c)?;
    let engine = detect_with(&client).await?;
    if engine.flavor == Flavor::OpenSearch && opts.ilm_policy.is_some() {
        bail!("{engine} has no ILM (index.lifecycle.name); give an ISM policy an ism_template matching the indices instead (docs/sinks.md)");
    }
    let t = templates(&c.index, engine.flavor, opts);
    let mut unchanged = 0;
    for (kind, list) in [
        ("_component_template", &t.components),
        ("_index_template", &t.index_templates),
    ] {
        for (name, body) in list {
            let path = format!("{kind}/{name}");
            let (status, old) = client.send(reqwest::Method::GET, &path, None).await?;
            if status == 200 && same_version(kind, &old) {
                unchanged += 1;
            }
            let (status, v) = client.send(reqwest::Method::PUT, &path, Some(body)).await?;
            if !(200..300).contains(&status) {
                bail!(
                    "PUT {path} answered {}",
                    error_text(status, &v, &client.secrets)
                );
            }
        }
    }
    Ok(Installed {
        engine,
        components: t.components.len(),
        index_templates: t.index_templates.len(),
        unchanged,
    })
}

/// At start-up (`serve`, `process --sink elasticsearch`): installs the templates when the sink
/// is Elasticsearch and `RELAY_ES_INSTALL_TEMPLATES` is true, and says what it found. A failure
/// stops start-up: the operator asked for templates, and events indexed without them are the
/// ones that get dead-lettered.
pub async fn install_at_startup(
    config: &crate::sink::config::SinkConfig,
) -> anyhow::Result<Option<Installed>> {
    if let crate::sink::config::SinkTarget::Elasticsearch(c) = &config.target {
        if c.install_templates {
            let done = install(c, &TemplateOptions::default())
                .await
                .context("RELAY_ES_INSTALL_TEMPLATES=true: installing the index templates")?;
            tracing::info!(templates = %done, "elasticsearch index templates installed");
            return Ok(Some(done));
        }
    }
    Ok(None)
}

/// True when a GET of a template shows it at [`TEMPLATES_VERSION`].
fn same_version(kind: &str, got: &Value) -> bool {
    let (list, inner) = match kind {
        "_component_template" => ("component_templates", "component_template"),
        _ => ("index_templates", "index_template"),
    };
    got[list][0][inner]["_meta"]["version"].as_u64() == Some(TEMPLATES_VERSION as u64)
}
