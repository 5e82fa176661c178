//! `--web.config.file`: the web configuration of Prometheus's exporter-toolkit, the file
//! node_exporter takes, with the same keys and meaning, so operators reuse theirs:
//! `tls_server_config` (certificate and key, inline or as files; `client_auth_type` with Go's
//! five policies; `client_ca_file`/`client_ca`; `client_allowed_sans`; `min_version`/
//! `max_version`; `cipher_suites`; `curve_preferences`; `prefer_server_cipher_suites`),
//! `http_server_config` (`headers`, and `http2`, accepted though the sentinel speaks HTTP/1.1
//! only) and `basic_auth_users` (bcrypt hashes). Relative paths are read from the file's
//! folder, as exporter-toolkit does.
//!
//! `client_allowed_sans` means what exporter-toolkit 0.10 and later make it mean (see
//! [`super::client_certs`]): with a `client_auth_type` that asks for a certificate, one of the
//! certificate's subject alternative names must equal an entry, after the policy's own check;
//! with `NoClientCert` it does nothing. Where that cannot protect (no policy asking, a policy
//! that verifies nothing, an empty list refusing everyone) the file still loads, as it does for
//! node_exporter, and [`WebConfig::warnings`] says so.
//!
//! Differences, each refused or said plainly rather than silently changed: rustls speaks TLS 1.2
//! and 1.3 only, so `min_version: TLS10` or `TLS11` still means 1.2 at least, and a
//! `max_version` below 1.2 is an error; a non-zero `rate_limit` is an error (not supported
//! yet). exporter-toolkit re-reads the file on every handshake and request;
//! [`super::web_reload`] re-reads it when it or a file it names changes, or on SIGHUP.
//!
//! Owns reading and checking the file and turning it into a rustls configuration. It opens no
//! socket: [`super::connections`] serves with what this builds, [`super::auth`] checks the users.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::client_certs::{AllowedSans, AnyClientCert};
use crate::config::{parse_yaml, ConfigError};

/// Why the web configuration cannot be used: one line naming the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read, or its YAML or a value in it is wrong.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A value parsed, but cannot be used as it stands.
    #[error("{file}:{line}: {key}: {reason}")]
    Invalid {
        /// The web configuration file.
        file: String,
        /// 1-based line of the value, 0 when unknown.
        line: u64,
        /// Dotted key path, e.g. `tls_server_config.client_ca_file`.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// The file's top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    #[serde(default)]
    cert: Option<Spanned<String>>,
    #[serde(default)]
    key: Option<Spanned<String>>,
    #[serde(default)]
    client_ca: Option<Spanned<String>>,
    #[serde(default)]
    cert_file: Option<Spanned<String>>,
    #[serde(default)]
    key_file: Option<Spanned<String>>,
    #[serde(default)]
    client_auth_type: Option<Spanned<ClientAuthType>>,
    #[serde(default)]
    client_ca_file: Option<Spanned<String>>,
    #[serde(default)]
    client_allowed_sans: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    min_version: Option<Spanned<TlsVersion>>,
    #[serde(default)]
    max_version: Option<Spanned<TlsVersion>>,
    #[serde(default)]
    cipher_suites: Vec<Spanned<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    curve_preferences: Vec<Spanned<String>>,
}

/// Go's `tls.ClientAuthType`, by the names exporter-toolkit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    NoClientCert,
    /// One is asked for, not required, and not verified.
    RequestClientCert,
    /// One is required, and not verified.
    #[serde(alias = "RequireClientCert")]
    RequireAnyClientCert,
    /// One is verified against the client CA when given.
    VerifyClientCertIfGiven,
    /// One is required and verified against the client CA.
    RequireAndVerifyClientCert,
}

/// A TLS version as exporter-toolkit names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    /// Accepted for compatibility; the sentinel speaks HTTP/1.1.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
}

/// `rate_limit`: accepted only when it limits nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitConfig {
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    burst: Option<u64>,
}

/// The response headers exporter-toolkit lets a file set, and the values each may take
/// (empty: any).
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Go's names of the curves `curve_preferences` may list, and rustls's group for each.
const CURVES: [(&str, rustls::NamedGroup); 4] = [
    ("CurveP256", rustls::NamedGroup::secp256r1),
    ("CurveP384", rustls::NamedGroup::secp384r1),
    ("CurveP521", rustls::NamedGroup::secp521r1),
    ("X25519", rustls::NamedGroup::X25519),
];

/// A checked web configuration, ready to serve with.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// The TLS server configuration, when the file enables TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Headers added to every response (`http_server_config.headers`).
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// Users and their bcrypt hashes (`basic_auth_users`); empty: no basic auth.
    pub users: BTreeMap<String, String>,
    /// The files the configuration names (certificate, key, client CA), as read.
    pub files: Vec<PathBuf>,
    /// Settings that work as exporter-toolkit has them work but are likely not what was
    /// meant, each one line naming the file, line and key; logged when the file is read.
    pub warnings: Vec<String>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the hashes.
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Builds [`WebConfigError::Invalid`] for a key of `file`, and notes the files it reads.
struct Checker<'a> {
    file: &'a str,
    dir: PathBuf,
    read: std::cell::RefCell<Vec<PathBuf>>,
}

impl Checker<'_> {
    fn invalid(&self, line: u64, key: &str, reason: impl Into<String>) -> WebConfigError {
        WebConfigError::Invalid {
            file: self.file.to_owned(),
            line,
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, key: &str, reason: impl Into<String>) -> WebConfigError {
        self.invalid(value.referenced.line(), key, reason)
    }

    /// A warning about the value at `value`, in the shape of an error line.
    fn warning<T>(&self, value: &Spanned<T>, key: &str, text: &str) -> String {
        format!("{}:{}: {key}: {text}", self.file, value.referenced.line())
    }

    /// Reads the PEM text given inline (`inline`) or in a file (`file_key`), not both.
    fn pem(
        &self,
        inline: &Option<Spanned<String>>,
        inline_key: &str,
        path: &Option<Spanned<String>>,
        file_key: &str,
    ) -> Result<Option<(Vec<u8>, u64, String)>, WebConfigError> {
        match (inline, path) {
            (Some(_), Some(p)) => Err(self.at(
                p,
                &format!("tls_server_config.{file_key}"),
                format!("give {file_key} or {inline_key}, not both"),
            )),
            (Some(text), None) => Ok(Some((
                text.value.as_bytes().to_vec(),
                text.referenced.line(),
                format!("tls_server_config.{inline_key}"),
            ))),
            (None, Some(p)) => {
                let full = self.dir.join(&p.value);
                self.read.borrow_mut().push(full.clone());
                let key = format!("tls_server_config.{file_key}");
                std::fs::read(&full)
                    .map(|bytes| Some((bytes, p.referenced.line(), key.clone())))
                    .map_err(|e| self.at(p, &key, format!("cannot read {}: {e}", full.display())))
            }
            (None, None) => Ok(None),
        }
    }
}

impl WebConfig {
    /// Reads and checks a web configuration file.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        WebConfig::parse(&text, &file, &dir)
    }

    /// Parses and checks web configuration text; `file` names it in errors, relative paths
    /// are read from `dir`.
    pub fn parse(text: &str, file: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let parsed: WebConfigFile = parse_yaml(text, file)?.unwrap_or_default();
        let check = Checker {
            file,
            dir: dir.to_path_buf(),
            read: Default::default(),
        };
        if let Some(interval) = parsed.rate_limit.as_ref().and_then(|r| r.interval.as_ref()) {
            if !matches!(interval.value.trim(), "" | "0" | "0s") {
                return Err(check.at(
                    interval,
                    "rate_limit.interval",
                    "rate limiting is not supported by ipfs-sentinel; remove rate_limit (the connection cap, --web.max-connections, bounds load)",
                ));
            }
        }
        let mut users = BTreeMap::new();
        for (user, hash) in &parsed.basic_auth_users {
            if hash.value.parse::<bcrypt::HashParts>().is_err() {
                return Err(check.at(
                    hash,
                    &format!("basic_auth_users.{user}"),
                    "not a bcrypt hash; make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`",
                ));
            }
            users.insert(user.clone(), hash.value.clone());
        }
        let mut headers = Vec::new();
        for (name, value) in parsed
            .http_server_config
            .iter()
            .flat_map(|h| h.headers.iter())
        {
            let key = format!("http_server_config.headers.{name}");
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                return Err(check.at(
                    value,
                    &key,
                    format!(
                        "HTTP header {name:?} can not be configured; one of {}",
                        names.join(", ")
                    ),
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&value.value.as_str()) {
                return Err(check.at(
                    value,
                    &key,
                    format!("expected one of {allowed:?}, got {:?}", value.value),
                ));
            }
            let header_value = axum::http::HeaderValue::from_str(&value.value)
                .map_err(|e| check.at(value, &key, format!("not a header value: {e}")))?;
            headers.push((
                axum::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| check.at(value, &key, e.to_string()))?,
                header_value,
            ));
        }
        let mut warnings = Vec::new();
        let tls = match &parsed.tls_server_config {
            Some(t) if tls_enabled(t) => {
                warnings.extend(allowed_sans_warning(t, &check));
                Some(Arc::new(server_config(t, &check)?))
            }
            _ => None,
        };
        Ok(WebConfig {
            tls,
            headers,
            users,
            files: check.read.take(),
            warnings,
        })
    }
}

/// exporter-toolkit's `IsEnabled`: any certificate, key, CA or policy turns TLS on.
fn tls_enabled(t: &TlsServerConfig) -> bool {
    t.cert.is_some()
        || t.key.is_some()
        || t.cert_file.is_some()
        || t.key_file.is_some()
        || t.client_ca.is_some()
        || t.client_ca_file.is_some()
        || t.client_auth_type.is_some()
}

/// What `client_allowed_sans` does with the file's `client_auth_type`, when that is likely
/// not what was meant: exporter-toolkit checks the list on every certificate it asked for,
/// verified or not, and on none when it asks for none.
fn allowed_sans_warning(t: &TlsServerConfig, check: &Checker<'_>) -> Option<String> {
    let sans = t.client_allowed_sans.as_ref()?;
    let key = "tls_server_config.client_allowed_sans";
    let policy = t.client_auth_type.as_ref().map(|p| p.value);
    let text = match policy.unwrap_or(ClientAuthType::NoClientCert) {
        ClientAuthType::NoClientCert => {
            "has no effect: client_auth_type NoClientCert asks for no client certificate; use RequireAndVerifyClientCert".to_owned()
        }
        p @ (ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert) => format!(
            "is checked on client certificates nobody verified (client_auth_type {p:?}), so any client can claim these names; use RequireAndVerifyClientCert with a client_ca_file"
        ),
        _ if sans.value.is_empty() => "is empty: every client is refused".to_owned(),
        _ => return None,
    };
    Some(check.warning(sans, key, &text))
}

/// The rustls configuration `t` describes.
fn server_config(
    t: &TlsServerConfig,
    check: &Checker<'_>,
) -> Result<rustls::ServerConfig, WebConfigError> {
    let Some((cert_pem, cert_line, cert_key)) =
        check.pem(&t.cert, "cert", &t.cert_file, "cert_file")?
    else {
        return Err(check.invalid(0, "tls_server_config", "missing one of cert or cert_file"));
    };
    let Some((key_pem, key_line, key_key)) = check.pem(&t.key, "key", &t.key_file, "key_file")?
    else {
        return Err(check.invalid(0, "tls_server_config", "missing one of key or key_file"));
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| check.invalid(cert_line, &cert_key, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(check.invalid(cert_line, &cert_key, "holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| check.invalid(key_line, &key_key, format!("not a PEM private key: {e}")))?;

    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    restrict_cipher_suites(&mut provider, &t.cipher_suites, check)?;
    order_curves(&mut provider, &t.curve_preferences, check)?;
    let provider = Arc::new(provider);
    let versions = protocol_versions(t, check)?;

    let ca = check.pem(
        &t.client_ca,
        "client_ca",
        &t.client_ca_file,
        "client_ca_file",
    )?;
    let policy = t
        .client_auth_type
        .as_ref()
        .map(|p| p.value)
        .unwrap_or(ClientAuthType::NoClientCert);
    let policy_line = t
        .client_auth_type
        .as_ref()
        .map(|p| p.referenced.line())
        .unwrap_or(0);
    let verifier = client_verifier(policy, policy_line, ca, &provider, check)?;
    let verifier = match &t.client_allowed_sans {
        Some(sans) if policy != ClientAuthType::NoClientCert => {
            Arc::new(AllowedSans::new(verifier, sans.value.clone())) as Arc<dyn ClientCertVerifier>
        }
        _ => verifier,
    };

    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| check.invalid(0, "tls_server_config", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            check.invalid(
                key_line,
                &key_key,
                format!("does not go with the certificate in {cert_key}: {e}"),
            )
        })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Keeps every TLS 1.3 suite (Go does not let them be chosen either) and, when the file lists
/// `cipher_suites`, only those TLS 1.2 suites, in the file's order.
fn restrict_cipher_suites(
    provider: &mut CryptoProvider,
    wanted: &[Spanned<String>],
    check: &Checker<'_>,
) -> Result<(), WebConfigError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let available: Vec<rustls::SupportedCipherSuite> = provider.cipher_suites.clone();
    let mut kept: Vec<rustls::SupportedCipherSuite> = available
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for name in wanted {
        let found = available.iter().find(|s| {
            s.version() == &rustls::version::TLS12 && format!("{:?}", s.suite()) == name.value
        });
        match found {
            Some(suite) => kept.push(*suite),
            None => {
                let names: Vec<String> = available
                    .iter()
                    .filter(|s| s.version() == &rustls::version::TLS12)
                    .map(|s| format!("{:?}", s.suite()))
                    .collect();
                return Err(check.at(
                    name,
                    "tls_server_config.cipher_suites",
                    format!(
                        "unknown or unsupported cipher suite {:?}; one of {}",
                        name.value,
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    provider.cipher_suites = kept;
    Ok(())
}

/// Orders the key exchange groups as `curve_preferences` lists them (only those).
fn order_curves(
    provider: &mut CryptoProvider,
    wanted: &[Spanned<String>],
    check: &Checker<'_>,
) -> Result<(), WebConfigError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::new();
    for name in wanted {
        let group = CURVES
            .iter()
            .find(|(n, _)| *n == name.value)
            .and_then(|(_, g)| provider.kx_groups.iter().find(|k| k.name() == *g));
        match group {
            Some(g) => kept.push(*g),
            None => {
                return Err(check.at(
                    name,
                    "tls_server_config.curve_preferences",
                    format!(
                        "unknown or unsupported curve {:?}; one of CurveP256, CurveP384, X25519",
                        name.value
                    ),
                ))
            }
        }
    }
    provider.kx_groups = kept;
    Ok(())
}

/// The versions between `min_version` (default TLS 1.2) and `max_version` (default 1.3).
fn protocol_versions(
    t: &TlsServerConfig,
    check: &Checker<'_>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    let min = t
        .min_version
        .as_ref()
        .map_or(TlsVersion::TLS12, |v| v.value);
    let max = t
        .max_version
        .as_ref()
        .map_or(TlsVersion::TLS13, |v| v.value);
    if let Some(v) = t
        .max_version
        .as_ref()
        .filter(|v| v.value < TlsVersion::TLS12)
    {
        return Err(check.at(
            v,
            "tls_server_config.max_version",
            "ipfs-sentinel speaks TLS 1.2 and 1.3 only; use TLS12 or TLS13",
        ));
    }
    if min > max {
        let line = t.min_version.as_ref().map_or(0, |v| v.referenced.line());
        return Err(check.invalid(
            line,
            "tls_server_config.min_version",
            "is above max_version",
        ));
    }
    let mut versions = Vec::new();
    if min <= TlsVersion::TLS12 {
        versions.push(&rustls::version::TLS12);
    }
    versions.push(&rustls::version::TLS13);
    Ok(versions)
}

/// The verifier for the client certificate policy, as Go's `tls.Config.ClientAuth` means it.
fn client_verifier(
    policy: ClientAuthType,
    policy_line: u64,
    ca: Option<(Vec<u8>, u64, String)>,
    provider: &Arc<CryptoProvider>,
    check: &Checker<'_>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let roots = match &ca {
        Some((pem, line, key)) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    check.invalid(*line, key, format!("not a PEM certificate: {e}"))
                })?;
                roots
                    .add(cert)
                    .map_err(|e| check.invalid(*line, key, format!("not a CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(check.invalid(*line, key, "holds no PEM certificate"));
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let any_cert = |mandatory: bool| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let verified = |roots: Option<Arc<RootCertStore>>, optional: bool| {
        let Some(roots) = roots else {
            return Err(check.invalid(
                policy_line,
                "tls_server_config.client_ca_file",
                format!("client_auth_type {policy:?} needs client_ca_file (or client_ca) to verify client certificates against"),
            ));
        };
        let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider));
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| {
            check.invalid(
                policy_line,
                "tls_server_config.client_ca_file",
                e.to_string(),
            )
        })
    };
    match policy {
        ClientAuthType::NoClientCert => match &ca {
            Some((_, line, key)) => Err(check.invalid(
                *line,
                key,
                "a client CA is configured without a client_auth_type; set client_auth_type: RequireAndVerifyClientCert",
            )),
            None => Ok(WebPkiClientVerifier::no_client_auth()),
        },
        ClientAuthType::RequestClientCert => Ok(any_cert(false)),
        ClientAuthType::RequireAnyClientCert => Ok(any_cert(true)),
        ClientAuthType::VerifyClientCertIfGiven => verified(roots, true),
        ClientAuthType::RequireAndVerifyClientCert => verified(roots, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with `server.crt`, `server.key` and `ca.crt` (the server's own certificate).
    fn pki_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.path().join("server.crt"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        dir
    }

    fn parse(dir: &Path, text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(text, "web.yml", dir)
    }

    #[test]
    fn client_allowed_sans_is_taken_and_warned_about_where_it_cannot_protect() {
        let dir = pki_dir();
        let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
        let cases = [
            (
                "",
                "",
                Some("web.yml:5: tls_server_config.client_allowed_sans: has no effect"),
            ),
            (
                "  client_auth_type: RequireAnyClientCert\n",
                "",
                Some("any client can claim these names"),
            ),
            (
                "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
                "",
                None,
            ),
            (
                "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n",
                "[]",
                Some("is empty: every client is refused"),
            ),
        ];
        for (policy, list, want) in cases {
            let list = if list.is_empty() {
                "\n    - client.test"
            } else {
                list
            };
            let text = format!("{tls}  client_allowed_sans: {list}\n{policy}");
            let web = parse(dir.path(), &text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(web.tls.is_some());
            match want {
                None => assert!(web.warnings.is_empty(), "{text}: {:?}", web.warnings),
                Some(w) => assert!(
                    web.warnings.len() == 1 && web.warnings[0].contains(w),
                    "{text}: {:?}",
                    web.warnings
                ),
            }
        }
    }
}
