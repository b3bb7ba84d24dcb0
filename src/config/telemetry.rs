//! `[telemetry]`: where OpenTelemetry traces go.

use super::error::{ConfigError, Locator};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// OTLP/HTTP (protobuf) collector, e.g. "http://127.0.0.1:4318" (spans go to `/v1/traces`).
    pub otlp_endpoint: Option<Spanned<String>>,
    /// `service.name` of the spans (default "switchyard").
    pub service_name: Option<Spanned<String>>,
}

/// Trace export settings; fixed at start (a reload keeps the running exporter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// The full URL spans are posted to (`.../v1/traces`); `None` = tracing off.
    pub otlp_traces_url: Option<String>,
    pub service_name: String,
}

pub fn settings(
    loc: &Locator<'_>,
    raw: Option<&RawTelemetry>,
) -> Result<TelemetrySettings, ConfigError> {
    let mut out = TelemetrySettings {
        otlp_traces_url: None,
        service_name: "switchyard".to_owned(),
    };
    let Some(raw) = raw else {
        return Ok(out);
    };
    if let Some(name) = &raw.service_name {
        if name.get_ref().trim().is_empty() {
            return Err(loc.error(name.span(), "telemetry.service_name", "must not be empty"));
        }
        out.service_name = name.get_ref().trim().to_owned();
    }
    if let Some(ep) = &raw.otlp_endpoint {
        let text = ep.get_ref().trim();
        let err = |m: &str| loc.error(ep.span(), "telemetry.otlp_endpoint", m);
        let uri: http::Uri = text
            .parse()
            .map_err(|_| err("expected a URL like \"http://127.0.0.1:4318\""))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(err(
                "expected an http:// URL of an OTLP/HTTP collector, like \"http://127.0.0.1:4318\" \
                 (https is not built in: run a collector agent beside the gateway)",
            ));
        }
        let base = text.trim_end_matches('/');
        out.otlp_traces_url = Some(if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        });
    }
    Ok(out)
}
