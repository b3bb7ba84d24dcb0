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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn otlp_endpoint_is_checked_with_file_line_and_field() {
        let parse = |t: &str| Config::parse("t.toml", t, &|_| None);
        let c = parse("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n").unwrap();
        assert_eq!(
            c.telemetry.otlp_traces_url.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(c.telemetry.service_name, "switchyard");
        assert!(parse("").unwrap().telemetry.otlp_traces_url.is_none());
        for bad in [
            "https://collector:4318",
            "127.0.0.1:4318",
            "grpc://x:4317",
            "http://",
        ] {
            let e = parse(&format!("[telemetry]\notlp_endpoint = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("t.toml:2:") && e.contains("telemetry.otlp_endpoint"),
                "{bad}: {e}"
            );
        }
        let e = parse("[telemetry]\nendpoint = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("endpoint"), "{e}");
    }
}
