//! A provider's base URL, split into what a pingora peer needs.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `/openai/v1` (may be empty).
    pub path: String,
}

impl BaseUrl {
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("`{text}` must start with https:// or http://")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("`{text}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if uri.query().is_some() {
            return Err(format!("`{text}` must not have a query string"));
        }
        if text.contains('@') {
            return Err(format!(
                "`{text}` must not carry credentials; put keys in api_keys"
            ));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri.path().trim_end_matches('/').to_owned();
        Ok(BaseUrl {
            tls,
            host,
            port,
            path,
        })
    }

    /// The `Host` header value: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_presets_and_local_servers() {
        let u = BaseUrl::parse("https://api.groq.com/openai/v1/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "api.groq.com", 443, "/openai/v1")
        );
        assert_eq!(u.host_header(), "api.groq.com");
        let u = BaseUrl::parse("http://127.0.0.1:9100/v1").unwrap();
        assert_eq!((u.tls, u.port), (false, 9100));
        assert_eq!(u.host_header(), "127.0.0.1:9100");
        let u = BaseUrl::parse("http://[::1]:11434").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("::1", ""));
        assert_eq!(u.to_string(), "http://[::1]:11434");
    }

    #[test]
    fn rejects_what_cannot_be_a_provider() {
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("api.openai.com/v1").is_err());
        assert!(BaseUrl::parse("https://u:p@host/v1").is_err());
        assert!(BaseUrl::parse("https://host/v1?x=1").is_err());
    }
}
