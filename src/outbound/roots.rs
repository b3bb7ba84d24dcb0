//! The TLS roots pingora's connector trusts: a CA file when one is configured, else the
//! platform's (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`). pingora panics when it cannot
//! load them; these functions load them first and say what is wrong instead. Used for the
//! proxy's connector at start-up ([`crate::app`]) and for the outbound client's.

use pingora_rustls::RootCertStore;

/// The root store for `ca_file` (or the platform's), or why it cannot be loaded.
pub fn load(ca_file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => pingora_rustls::load_ca_file_into_store(path, &mut store)
            .map_err(|e| format!("cannot load TLS root certificates from {path}: {e}"))?,
        None => {
            pingora_rustls::load_platform_certs_incl_env_into_store(&mut store).map_err(|e| {
                format!(
                    "cannot load TLS root certificates for upstream providers: {e} ({}); \
                     install ca-certificates or fix SSL_CERT_FILE / SSL_CERT_DIR",
                    env_hint()
                )
            })?
        }
    }
    Ok(store)
}

/// The root-certificate variables set in the environment, for messages.
pub fn env_hint() -> String {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok().map(|x| format!("{v}={x}")))
        .collect::<Vec<_>>()
        .join(", ")
}
